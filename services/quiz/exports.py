"""The full leaderboard of a competition as a file (.xlsx, CSV) for trainers.

Unlike the on-screen board (at most 200 rows) it holds every ranked worker, in the
published tie order (``leaderboard.order_by``), with the same rule for what is shown:
the pre-freeze standings until the competition is finalised, the final ones after.
A trainer governing the competition's unit gets every row; a trainer governing part of
it (a street of a district competition) gets the rows of their workers, each keeping
its overall rank; anyone else is refused (403).

Personal data: the file carries what the board shows (name, unit, results) and an
internal person number, no resident ID or mobile number, so there is nothing to mask.
Text cells that a spreadsheet would run as a formula (=, +, -, @) are prefixed with an
apostrophe.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import Forbidden
from models.identity import OrgUnit, Person
from models.quiz import Attempt, AttemptStatus, Competition, CompetitionStatus
from services.quiz import competitions, leaderboard
from services.quiz.config import SHANGHAI

TRAINER = ("trainer",)
COLUMNS = [
    "名次",
    "人员编号",
    "姓名",
    "所属组织",
    "星级分组",
    "得分",
    "满分",
    "正确率(%)",
    "用时(秒)",
    "提交时间",
    "交卷方式",
]
HOW = {AttemptStatus.submitted: "本人提交", AttemptStatus.expired: "超时按已保存答案评分"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _limits(actor: Actor, home: OrgUnit) -> list[str] | None:
    """None: the actor sees the whole board; else the governed subtrees inside it."""
    require_role(actor, *TRAINER)
    if actor.covers(home.path, *TRAINER):
        return None
    inside = [p for p in actor.jurisdictions(*TRAINER) if p.startswith(home.path)]
    if not inside:
        raise Forbidden("不在您的管辖范围内", code="out_of_jurisdiction")
    return inside


def board(session: Session, actor: Actor, comp_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Every ranked row the actor may see, with a description of the file. Read-only."""
    now = now or utcnow()
    comp = competitions.get(session, comp_id)
    home = session.get(OrgUnit, comp.org_unit_id)
    assert home is not None
    limits = _limits(actor, home)
    final = comp.status == CompetitionStatus.finalized
    stmt = (
        select(Attempt, Person.name, OrgUnit.path)
        .join(Person, Person.id == Attempt.person_id)
        .join(OrgUnit, OrgUnit.id == Person.org_unit_id)
        .where(
            Attempt.competition_id == comp.id,
            Attempt.status.in_(leaderboard.FINISHED),
            OrgUnit.path.startswith(home.path),
        )
        .order_by(*leaderboard.order_by())
    )
    if not final and comp.freeze_at is not None:
        stmt = stmt.where(Attempt.submitted_at < comp.freeze_at)
    ranked = [
        (rank, a, name, path)
        for rank, (a, name, path) in enumerate(session.execute(stmt).all(), 1)
        if limits is None or any(path.startswith(p) for p in limits)
    ]
    units = _unit_names(session, {p for *_, p in ranked}, home.path)
    rows = [
        [
            rank,
            a.person_id,
            name,
            units(path),
            f"{a.bracket}星",
            a.marks,
            a.max_marks,
            a.accuracy_bp / 100,
            a.elapsed_ms / 1000,
            a.submitted_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if a.submitted_at else "",
            HOW.get(a.status, str(a.status)),
        ]
        for rank, a, name, path in ranked
    ]
    about = [
        ["比武", comp.title],
        ["比武组织", home.name],
        ["成绩状态", "最终成绩" if final else "封榜前成绩（尚未公布最终成绩）"],
        ["导出范围", "全部参赛人员" if limits is None else "本人管辖范围内的参赛人员（名次为全比武名次）"],
        ["人数", len(rows)],
        ["排名规则", "得分高者优先；同分比正确率；再比用时（服务器计时）短；再比提交早"],
        ["导出时间", now.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")],
    ]
    return {"competition": comp, "final": final, "rows": rows, "about": about}


def _unit_names(session: Session, paths: set[str], home_path: str):
    """path -> "street/community/grid" names below the competition's unit."""
    home_ids = {p for p in home_path.split("/") if p}
    ids = {int(p) for path in paths for p in path.split("/") if p and p not in home_ids}
    names = (
        dict(session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(ids))).all())
        if ids
        else {}
    )

    def name(path: str) -> str:
        return "/".join(names[int(p)] for p in path.split("/") if p and p not in home_ids)

    return name


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_xlsx(data: dict[str, Any]) -> bytes:
    """A workbook: sheet 排行榜 (header + every row), sheet 说明 (what the file holds)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("排行榜")
    ws.freeze_panes = "A2"
    ws.append(COLUMNS)
    for row in data["rows"]:
        ws.append([_safe(v) for v in row])
    about = wb.create_sheet("说明")
    for row in data["about"]:
        about.append([_safe(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_csv(data: dict[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads the Chinese text), CRLF rows."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in data["rows"]:
        writer.writerow([_safe(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def filename(comp: Competition, final: bool, ext: str) -> tuple[str, str]:
    """(ASCII fallback, UTF-8 name) for Content-Disposition."""
    tag = "final" if final else "provisional"
    return f"competition-{comp.id}-leaderboard-{tag}.{ext}", f"{comp.title}-排行榜.{ext}"
