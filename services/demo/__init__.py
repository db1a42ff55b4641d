"""`flask seed-demo`: each domain adds its own idempotent seed step here."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.config import Settings


def seed_all(session: Session, settings: Settings) -> list[str]:
    from services.demo import foundation, passes, permits, quiz

    steps = [foundation.seed, quiz.seed, passes.seed, permits.seed]
    report: list[str] = []
    for step in steps:
        report.extend(step(session, settings))
        session.flush()
    return report
