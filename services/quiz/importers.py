"""Importing question files: dry run lists every bad row; a real import is all-or-nothing
and idempotent (questions whose content hash exists are skipped, so re-importing the same
file adds nothing)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor, require_role
from core.db import utcnow
from core.errors import ValidationFailed
from models.quiz import ImportBatch, QuestionVersion
from services.quiz import formats
from services.quiz.bank import TRAINER_ROLES, Draft, store

FORMATS = ("xlsx", "csv", "aiken", "gift")
MAX_ERRORS_SHOWN = 500


def detect_format(filename: str) -> str:
    name = filename.lower()
    for ext, fmt in ((".xlsx", "xlsx"), (".csv", "csv"), (".gift", "gift"), (".aiken", "aiken")):
        if name.endswith(ext):
            return fmt
    if name.endswith(".txt"):
        return "aiken"
    raise ValidationFailed("无法从文件名判断格式，请指定 format", fields={"format": "必填"})


def parse(content: bytes, fmt: str, topics: list[str], difficulty: int) -> tuple[list[Draft], list]:
    if fmt not in FORMATS:
        raise ValidationFailed(fields={"format": "应为 xlsx、csv、aiken 或 gift"})
    try:
        if fmt == "xlsx":
            drafts, errors = formats.parse_xlsx(content)
        elif fmt == "csv":
            drafts, errors = formats.parse_csv(content)
        elif fmt == "aiken":
            drafts, errors = formats.parse_aiken(content, topics, difficulty)
        else:
            drafts, errors = formats.parse_gift(content, topics, difficulty)
    except ValueError as exc:
        return [], [(0, str(exc))]
    return drafts, formats.validate(drafts, errors)


def run_import(
    session: Session,
    actor: Actor | None,
    content: bytes,
    filename: str,
    *,
    fmt: str | None = None,
    topics: list[str] | None = None,
    difficulty: int = 3,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Parse, check and (unless ``dry_run``) store a question file.

    Any bad row refuses the whole file (ValidationFailed with every line and reason in
    ``details.errors``); a dry run returns the same list without raising. Duplicates of
    existing questions (or of earlier rows) are counted as ``skipped``. ``actor`` None is
    the CLI/demo seeding path. Writes questions, versions, topics and an ImportBatch.
    """
    if actor is not None:
        require_role(actor, *TRAINER_ROLES)
    now = now or utcnow()
    fmt = fmt or detect_format(filename)
    drafts, errors = parse(content, fmt, topics or [], difficulty)
    report: dict[str, Any] = {
        "filename": filename,
        "format": fmt,
        "total": len(drafts),
        "errors": [{"line": line, "reason": why} for line, why in errors[:MAX_ERRORS_SHOWN]],
        "dry_run": dry_run,
    }
    hashes = [d.content_hash() for d in drafts]
    known = _existing(session, hashes)
    seen: set[str] = set()
    bad_lines = {line for line, _ in errors}
    fresh = []
    skipped = 0
    for d, h in zip(drafts, hashes, strict=True):
        if d.line in bad_lines:
            continue
        if h in known or h in seen:
            skipped += 1
        else:
            fresh.append(d)
        seen.add(h)
    report.update(added=len(fresh), skipped=skipped)
    if dry_run:
        report["would_add"] = report.pop("added")
        return report
    if errors:
        raise ValidationFailed(
            f"文件有 {len(errors)} 处错误，未导入任何题目", code="import_rejected", details=report
        )
    actor_id = actor.person_id if actor else None
    for d in fresh:
        store(session, d, actor_id, now)
        if progress:
            progress(1)
    session.add(
        ImportBatch(
            filename=filename[:200],
            file_format=fmt,
            file_hash=hashlib.sha256(content).hexdigest(),
            added=len(fresh),
            skipped=report["skipped"],
            created_by_id=actor_id,
            created_at=now,
        )
    )
    session.flush()
    return report


def _existing(session: Session, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(hashes), 500):
        chunk = hashes[i : i + 500]
        found.update(
            session.scalars(
                select(QuestionVersion.content_hash).where(QuestionVersion.content_hash.in_(chunk))
            )
        )
    return found


def template_xlsx() -> bytes:
    """The downloadable import template: header, one example per type, an instructions sheet."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "题目"
    ws.append(formats.COLUMNS)
    examples = [
        [
            "单选题",
            "网格员发现辖区内出租房屋新入住人员，应在几日内完成信息采集？",
            "1日",
            "3日",
            "7日",
            "15日",
            "",
            "",
            "B",
            "按照流动人口管理要求，应在3日内采集登记。",
            "信息采集",
            "2",
            "示例",
            "",
        ],
        [
            "多选题",
            "矛盾纠纷排查中，以下哪些属于应立即上报的情形？",
            "可能引发群体性事件",
            "可能引发民转刑案件",
            "邻里噪音轻微争执",
            "涉及人身安全威胁",
            "",
            "",
            "ABD",
            "有激化风险的纠纷须立即上报。",
            "矛盾纠纷化解",
            "3",
            "",
            "",
        ],
        [
            "判断题",
            "网格员可以将采集的居民身份证号码发到微信群中核对。",
            "",
            "",
            "",
            "",
            "",
            "",
            "错误",
            "个人信息须依法保护，不得随意公开。",
            "法律法规",
            "1",
            "",
            "",
        ],
        [
            "情景题",
            "某小区一居民楼楼道内堆放大量纸箱和电动自行车，夜间有居民在楼道充电。",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "楼道堆物与室内充电均为火灾隐患。",
            "安全隐患排查",
            "3",
            "",
            "S1",
        ],
        [
            "情景小题",
            "网格员首先应当怎么做？",
            "拍照记录并劝导清理",
            "直接报警",
            "不予理会",
            "",
            "",
            "",
            "A",
            "",
            "",
            "",
            "",
            "S1",
        ],
    ]
    for row in examples:
        ws.append(row)
    help_ws = wb.create_sheet("说明")
    for line in (
        "题型：单选题、多选题、判断题、情景题、情景小题",
        "情景题在“题干”列填写案例材料，并填写“情景编号”；其小题用题型“情景小题”、相同情景编号",
        "答案：单选填 A；多选填 ABD；判断填 正确 或 错误",
        "知识点：多个用逗号分隔；难度：1～5",
        "重复导入同一文件不会新增题目；有错误的文件整体不导入，请先“试导入”查看错误行",
    ):
        help_ws.append([line])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
