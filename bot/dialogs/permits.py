"""Enterprise dialogs for e-permits (services.permits): 证照 (credentials and permits
expiring soon and open warnings of the member's enterprises), and the permit side of 查验
(public fields)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.dialogs.common import VERIFIERS
from bot.engine import Reply, Turn
from bot.router import command
from core.errors import NotFound

# Shown as "expiring soon": the same horizon as the 30/7/1-day reminders (design/jobs.md).
EXPIRY_HORIZON_DAYS = 30
MAX_LINES = 10
KIND = {
    "vehicle_registration": "行驶证",
    "road_transport": "道路运输证",
    "driving_licence": "驾驶证",
    "driver_qualification": "从业资格证",
    "escort_qualification": "押运员资格证",
    "enterprise_licence": "企业许可/备案",
}
WARNING_STATUS = {"assigned": "待签收", "acknowledged": "已签收", "handled": "已处置"}
PERMIT_STATUS = {"valid": "有效", "expired": "已失效", "revoked": "已撤销"}
PURPOSE = {"purchase": "购买", "transport": "运输"}


def _enterprises(turn: Turn) -> list[Any]:
    from models.permits.enterprises import Enterprise, Member, MemberStatus

    actor = turn.actor()
    rows = turn.session.scalars(
        select(Enterprise)
        .join(Member, Member.enterprise_id == Enterprise.id)
        .where(Member.person_id == actor.person_id, Member.status == MemberStatus.active)
        .distinct()
    )
    return list(rows)


def _due(session: Session, model: Any, statuses: list[Any], enterprise_id: int, today: Any, *, lapsed: bool):
    """The enterprise's ``model`` rows in ``statuses`` whose validity ends within the
    horizon (``lapsed``: those already past it too), soonest first."""
    horizon = today + timedelta(days=EXPIRY_HORIZON_DAYS)
    window = [model.valid_until <= horizon] + ([] if lapsed else [model.valid_until >= today])
    return list(
        session.scalars(
            select(model)
            .where(model.enterprise_id == enterprise_id, model.status.in_(statuses), *window)
            .order_by(model.valid_until, model.id)
            .limit(MAX_LINES)
        )
    )


def _expiring_permits(session: Session, enterprise_id: int, today: Any) -> list[Any]:
    """The enterprise's usable permits whose validity ends within the horizon."""
    from models.permits.applications import Permit, PermitStatus

    return _due(
        session, Permit, [PermitStatus.valid, PermitStatus.flagged], enterprise_id, today, lapsed=False
    )


def _expiring(session: Session, enterprise_id: int, today: Any) -> list[Any]:
    """The enterprise's credentials expiring within the horizon or already expired."""
    from models.permits.credentials import Credential, CredentialStatus

    statuses = [CredentialStatus.active, CredentialStatus.expired]
    return _due(session, Credential, statuses, enterprise_id, today, lapsed=True)


def _when(days: int) -> str:
    return f"已过期 {-days} 天" if days < 0 else ("今天到期" if days == 0 else f"{days} 天后到期")


@command(
    "证照",
    summary="证照到期提醒和待处理预警",
    roles=("enterprise",),
    menu_key="PERMITS",
    aliases=("证件",),
    slow=True,  # settles the enterprise's pending ledger events first
)
def credentials_overview(turn: Turn, _args: str) -> Reply:
    from services.permits import enterprises, ledger_drain, warnings
    from services.permits.issuing import local_date

    ledger_drain.settle_for(turn.session)  # warnings raised by pending ledger events first
    actor = turn.actor()
    ents = _enterprises(turn)
    if not ents:
        return Reply(text="您还不是任何企业的成员。请联系企业专管员邀请您加入。")
    today = local_date(turn.now)
    lines = []
    for ent in ents:
        enterprises.require_member(turn.session, actor, ent.id)
        lines.append(f"【{ent.name}】")
        creds = _expiring(turn.session, ent.id, today)
        for c in creds:
            when = _when((c.valid_until - today).days)
            lines.append(f"· {KIND.get(c.kind.value, c.kind.value)} {c.number}：{when}（{c.valid_until}）")
        permits = _expiring_permits(turn.session, ent.id, today)
        for p in permits:
            label = f"{PURPOSE.get(p.purpose.value, p.purpose.value)}许可证明 {p.number}"
            lines.append(f"· {label}：{_when((p.valid_until - today).days)}（{p.valid_until}）")
        if not creds and not permits:
            lines.append(f"· {EXPIRY_HORIZON_DAYS} 天内没有到期的证照和许可证明")
        open_warnings = [
            w for w in warnings.list_for(turn.session, actor, ent.id) if w.status.value != "closed"
        ]
        for w in open_warnings[:MAX_LINES]:
            status = WARNING_STATUS.get(w.status.value, w.status.value)
            lines.append(f"· 预警 #{w.id}（{w.risk_type}）：{status}，处置期限 {_local(w.due_at)}")
        if not open_warnings:
            lines.append("· 没有待处理的预警")
    return Reply(text="\n".join(lines))


def _local(dt: Any) -> str:
    from services.permits.issuing import TZ

    return dt.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def verify_permit(session: Session, number: str, now: Any) -> str | None:
    """Public validity of a permit number (no personal data); None if unknown."""
    from services.permits import verify

    try:
        view = verify.by_number(session, number, now)
    except NotFound:
        return None
    status = PERMIT_STATUS.get(view["status"], view["status"])
    if view.get("flagged"):
        status += "（存在预警，请核实）"
    return (
        f"许可证明 {view['number']}：{status}\n"
        f"品名：{view['chemical']} {view['quantity']}{view['unit']}\n"
        f"有效期：{view['valid_from']} 至 {view['valid_until']}\n"
        f"签发机关：{view['issuing_authority']}"
    )


VERIFIERS.append(verify_permit)
