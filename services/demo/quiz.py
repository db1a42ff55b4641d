"""Demo quiz data: the question bank (64 GIFT questions across the eight topics plus
scenario questions from CSV, loaded through the real importer), a blueprint paper, a
competition for 桐乡市, and a week of simulated daily practice so portraits have data.
Idempotent: the importer skips known questions; the rest checks before adding."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import load_actor
from core.config import Settings
from core.db import utcnow
from models.identity import OrgUnit, Role, RoleGrant
from models.quiz import AnswerEvent, Competition, Paper, QuestionVersion
from services.quiz import attempts, bank, competitions, importers, practice
from services.quiz.config import SHANGHAI

DATA = Path(__file__).parent / "data"
TOPICS = [
    "政治引领",
    "信息采集",
    "矛盾纠纷化解",
    "服务群众",
    "安全隐患排查",
    "应急处置",
    "疫情防控",
    "法律法规",
]
PAPER_TITLE = "网格员月度测试（演示）"
COMPETITION_TITLE = "网格员月度比武（演示）"
COMPETITION_PAPER_TITLE = "网格员月度比武卷（演示）"


def seed(session: Session, settings: Settings) -> list[str]:
    added = 0
    for name in ("quiz_bank.gift", "quiz_scenarios.csv"):
        report = importers.run_import(session, None, (DATA / name).read_bytes(), name)
        added += report["added"]
    lines = [f"quiz questions +{added}"]
    trainer = session.scalar(
        select(RoleGrant)
        .where(RoleGrant.role == Role.trainer)
        .join(OrgUnit, OrgUnit.id == RoleGrant.org_unit_id)
        .where(OrgUnit.code == "330483")
    )
    if trainer is None:
        return lines
    actor = load_actor(session, trainer.person_id)
    for title, allowed in ((PAPER_TITLE, 3), (COMPETITION_PAPER_TITLE, 1)):
        if _paper(session, actor, title, allowed):
            lines.append("quiz paper +1")
    # a competition has its own paper: a plain test on it would reveal the questions
    paper = session.scalar(select(Paper).where(Paper.title == COMPETITION_PAPER_TITLE))
    assert paper is not None
    if session.scalar(select(Competition.id).where(Competition.title == COMPETITION_TITLE)) is None:
        start = _next_saturday_9am(utcnow())
        competitions.create(
            session,
            actor,
            {
                "title": COMPETITION_TITLE,
                "paper_id": paper.id,
                "org_unit_id": trainer.org_unit_id,
                "starts_at": start,
                "ends_at": start + timedelta(hours=12),
                "freeze_at": start + timedelta(hours=11),
            },
        )
        lines.append("quiz competition +1")
    lines.append(f"quiz practice answers +{_practice_history(session)}")
    return lines


def _paper(session: Session, actor, title: str, attempts_allowed: int) -> bool:
    """Create the demo paper ``title`` unless it exists; True if created."""
    if session.scalar(select(Paper.id).where(Paper.title == title)) is not None:
        return False
    attempts.create_paper(
        session,
        actor,
        {
            "title": title,
            "mode": "blueprint",
            "duration_seconds": 1200,
            "attempts_allowed": attempts_allowed,
            "blueprint": [{"topic": t, "count": 2} for t in TOPICS],
        },
    )
    return True


def _next_saturday_9am(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    days = (5 - local.weekday()) % 7 or 7
    day = (local + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI).astimezone(UTC)


def _practice_history(session: Session) -> int:
    """Eight days of daily practice for the demo workers (skipped once any exists)."""
    if session.scalar(select(func.count()).select_from(AnswerEvent)):
        return 0
    rng = random.Random(2026)
    workers = list(session.scalars(select(RoleGrant.person_id).where(RoleGrant.role == Role.grid_worker)))
    now = utcnow()
    n = 0
    for pid in workers:
        actor = load_actor(session, pid)
        skill = rng.uniform(0.45, 0.9)
        weak = rng.choice(TOPICS)
        for back in range(8, 0, -1):
            if rng.random() > 0.7:
                continue
            when = now - timedelta(days=back, hours=rng.randint(0, 6))
            for item in practice.start_daily(session, actor, when)["items"]:
                if item["answered"]:
                    continue
                v = session.get(QuestionVersion, _version_id(session, item["item_id"]))
                p = skill - (0.3 if weak in item["question"]["topics"] else 0.0)
                choice = _reply(v, rng.random() < p)
                practice.answer(session, actor, item["item_id"], choice, when + timedelta(minutes=1))
                n += 1
    return n


def _version_id(session: Session, item_id: int) -> int:
    from models.quiz import PracticeItem

    item = session.get(PracticeItem, item_id)
    assert item is not None
    return item.version_id


def _reply(v: QuestionVersion | None, right: bool) -> list[str]:
    assert v is not None
    answers = bank.answer_keys(v)
    if right:
        return answers
    return [
        next(k for k in keys if k != a) for keys, a in zip(bank.options_per_part(v), answers, strict=True)
    ]
