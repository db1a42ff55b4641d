"""Raise and resolve explainable risk signals; a new signal opens a warning."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.permits.risk import RiskSignal, Severity, SignalStatus
from services.permits import rules, warnings


def raise_signal(
    session: Session,
    enterprise_id: int,
    model: str,
    subject: str,
    *,
    rule: str,
    inputs: dict[str, Any],
    threshold: dict[str, Any],
    now: datetime,
    severity: str | None = None,
) -> RiskSignal:
    """Open (or refresh) the signal of ``model`` for ``subject``; idempotent per subject.

    Side effects: a new signal opens a warning assigned by risk type (see warnings.py).
    """
    cfg = rules.RISK[model]
    key = f"{model}:{enterprise_id}:{subject}"
    sig = session.scalar(select(RiskSignal).where(RiskSignal.dedup_key == key))
    fresh = sig is None
    if fresh:
        sig = RiskSignal(
            enterprise_id=enterprise_id, model=model, subject=subject, dedup_key=key, created_at=now
        )
        session.add(sig)
    sig.severity = Severity(severity or cfg["severity"])
    sig.rule, sig.inputs, sig.threshold = rule, inputs, threshold
    sig.rules_version, sig.evaluated_at = rules.VERSION, now
    sig.reevaluate_at = now + timedelta(hours=cfg["reevaluate_hours"])
    reopened = sig.status == SignalStatus.resolved
    sig.status, sig.resolved_at = SignalStatus.open, None
    session.flush()
    if fresh or reopened:
        warnings.open_for_signal(session, sig, now)
    return sig


def resolve_signal(session: Session, enterprise_id: int, model: str, subject: str, now: datetime) -> None:
    """The condition no longer holds at re-evaluation: the signal stops counting."""
    sig = session.scalar(
        select(RiskSignal).where(RiskSignal.dedup_key == f"{model}:{enterprise_id}:{subject}")
    )
    if sig is not None and sig.status == SignalStatus.open:
        sig.status, sig.resolved_at, sig.evaluated_at = SignalStatus.resolved, now, now


def explain(sig: RiskSignal) -> dict[str, Any]:
    """What the enterprise and the regulator see: rule, inputs, threshold, next evaluation."""
    return {
        "id": sig.id,
        "model": sig.model,
        "severity": sig.severity.value,
        "status": sig.status.value,
        "subject": sig.subject,
        "rule": sig.rule,
        "inputs": sig.inputs,
        "threshold": sig.threshold,
        "rules_version": sig.rules_version,
        "evaluated_at": sig.evaluated_at.isoformat(),
        "reevaluate_at": sig.reevaluate_at.isoformat(),
    }
