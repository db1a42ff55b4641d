"""The three-colour code (三色码) derived from an enterprise's open risk signals."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.permits.risk import RiskSignal, Severity, SignalStatus


def enterprise_colour(session: Session, enterprise_id: int) -> str:
    """red if any open hard violation, yellow if any open statistical signal, else green."""
    severities = set(
        session.scalars(
            select(RiskSignal.severity).where(
                RiskSignal.enterprise_id == enterprise_id, RiskSignal.status == SignalStatus.open
            )
        )
    )
    if Severity.red in severities:
        return "red"
    if Severity.yellow in severities:
        return "yellow"
    return "green"
