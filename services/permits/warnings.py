"""Warning loop (闭环处置): assigned by risk type → acknowledged → handled → closed.

SLA clock: ``due_at`` = opened + ``WARNING_SLA_DAYS``; ``escalate_overdue`` raises the
escalation level of open warnings past due (idempotent per level). The enterprise's
managers are notified through the outbox at every step that concerns them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import outbox
from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound
from models.permits.enterprises import Enterprise
from models.permits.risk import RiskSignal, SignalStatus, Warning, WarningStatus
from models.platform import AuditEntry
from services.permits import rules
from services.permits.enterprises import is_regulator_of, require_member

NOTIFY_JOB = "permits.notify"
RISK_NAMES = {
    "mass_balance": "账实不符",
    "waybill_mismatch": "运单数量不一致",
    "consumption_anomaly": "使用量异常",
    "production_surge": "短期产量激增",
    "fatigue_driving": "疲劳驾驶",
    "credential_lapse": "证照失效仍在使用",
    "cumulative_purchase": "累计购买量异常",
}


def _notify(session: Session, w: Warning, text: str, step: str) -> None:
    outbox.add(
        session,
        NOTIFY_JOB,
        {"enterprise_id": w.enterprise_id, "warning_id": w.id, "text": text},
        dedup_key=f"warning:{w.id}:{step}",
    )


def open_for_signal(session: Session, sig: RiskSignal, now: datetime) -> Warning:
    """Open the warning of ``sig`` (one per signal), assigned by risk type."""
    w = session.scalar(select(Warning).where(Warning.signal_id == sig.id))
    if w is not None and w.status != WarningStatus.closed:
        return w
    if w is None:
        w = Warning(signal_id=sig.id, enterprise_id=sig.enterprise_id, risk_type=sig.model, created_at=now)
        session.add(w)
    w.department = rules.DEPARTMENT_BY_RISK[sig.model]
    w.status, w.due_at, w.escalation_level = (
        WarningStatus.assigned,
        now + timedelta(days=rules.WARNING_SLA_DAYS),
        0,
    )
    session.flush()
    _notify(
        session,
        w,
        f"贵单位产生预警：{RISK_NAMES.get(sig.model, sig.model)}，请及时说明处置",
        f"open:{sig.id}:{now:%Y%m%d%H%M}",
    )
    return w


def _load(session: Session, actor: Actor, warning_id: int) -> Warning:
    w = session.get(Warning, warning_id, with_for_update=True)
    if w is None:
        raise NotFound("预警不存在", code="warning_not_found")
    ent = session.get(Enterprise, w.enterprise_id)
    dept_ok = actor.has_role("admin") or any(
        g.role == "regulator" and g.department == w.department for g in actor.grants
    )
    if not (dept_ok and is_regulator_of(session, actor, ent)):
        raise Forbidden("该预警不属于您的部门或辖区", code="warning_not_assigned_to_you")
    return w


def _step(session: Session, actor: Actor, w: Warning, frm: WarningStatus, to: WarningStatus) -> None:
    if w.status != frm:
        raise Conflict(f"预警当前状态为 {w.status.value}，不能执行此操作", code="invalid_warning_transition")
    w.status = to
    session.add(
        AuditEntry(
            actor_id=actor.person_id,
            action=f"warning.{to.value}",
            object_type="permit_warning",
            object_id=str(w.id),
        )
    )


def acknowledge(session: Session, actor: Actor, warning_id: int, now: datetime | None = None) -> Warning:
    """The assigned department takes the warning."""
    w = _load(session, actor, warning_id)
    _step(session, actor, w, WarningStatus.assigned, WarningStatus.acknowledged)
    w.acknowledged_by_id, w.acknowledged_at = actor.person_id, now or utcnow()
    session.flush()
    return w


def answer(session: Session, actor: Actor, warning_id: int, text: str) -> Warning:
    """The enterprise manager answers (chat or form); stored as feedback."""
    w = session.get(Warning, warning_id)
    if w is None:
        raise NotFound("预警不存在", code="warning_not_found")
    require_member(session, actor, w.enterprise_id, "manager")
    w.feedback = ((w.feedback + "\n") if w.feedback else "") + f"[企业说明] {text}"
    session.flush()
    return w


def handle(
    session: Session, actor: Actor, warning_id: int, feedback: str, now: datetime | None = None
) -> Warning:
    """The department records how it handled the warning."""
    w = _load(session, actor, warning_id)
    _step(session, actor, w, WarningStatus.acknowledged, WarningStatus.handled)
    w.feedback = ((w.feedback + "\n") if w.feedback else "") + feedback
    w.handled_by_id, w.handled_at = actor.person_id, now or utcnow()
    session.flush()
    _notify(session, w, f"预警已处置：{feedback}", "handled")
    return w


def close(
    session: Session, actor: Actor, warning_id: int, evaluation: str, now: datetime | None = None
) -> Warning:
    """Evaluate and close; the signal is resolved."""
    now = now or utcnow()
    w = _load(session, actor, warning_id)
    _step(session, actor, w, WarningStatus.handled, WarningStatus.closed)
    w.evaluation, w.closed_by_id, w.closed_at = evaluation, actor.person_id, now
    sig = session.get(RiskSignal, w.signal_id)
    sig.status, sig.resolved_at = SignalStatus.resolved, now
    session.flush()
    _notify(session, w, "预警已办结", "closed")
    return w


def escalate_overdue(session: Session, now: datetime) -> int:
    """Raise the escalation level of open warnings past their SLA; returns how many."""
    rows = session.scalars(
        select(Warning).where(Warning.status != WarningStatus.closed, Warning.due_at < now).with_for_update()
    )
    count = 0
    for w in rows:
        overdue_days = (now - w.due_at).days
        level = 1 + overdue_days // rules.ESCALATION_STEP_DAYS
        if level > w.escalation_level:
            w.escalation_level, w.escalated_at = level, now
            _notify(session, w, f"预警已超期，升级至第{level}级督办", f"escalate:{level}")
            count += 1
    session.flush()
    return count


def list_for(session: Session, actor: Actor, enterprise_id: int | None = None) -> list[Warning]:
    """Warnings the actor may see: a department's in its jurisdiction, or its enterprise's."""
    stmt = select(Warning).order_by(Warning.id.desc()).limit(200)
    if enterprise_id is not None:
        stmt = stmt.where(Warning.enterprise_id == enterprise_id)
    out = []
    for w in session.scalars(stmt):
        ent = session.get(Enterprise, w.enterprise_id)
        if is_regulator_of(session, actor, ent):
            out.append(w)
        else:
            try:
                require_member(session, actor, w.enterprise_id)
                out.append(w)
            except Forbidden:
                continue
    return out
