"""Notifications: what domains call to tell a person something.

``notify`` writes a ``notifications`` row and a ``push.send`` outbox row in the caller's
transaction; the message goes out after commit (RQ, or inline without Redis).
``accept_subscriptions`` records the mini-program's one-time subscribe consents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import outbox
from core.db import utcnow
from core.errors import ValidationFailed
from jobs.push.kinds import PushKind, push_kind, subscribe_template_ids
from models.identity import Identity, IdentityKind
from models.jobs import Channel, Notification, NotificationStatus, SubscriptionCredit

NO_CHANNEL = "该用户未绑定微信或钉钉，无法推送"


def notify(
    session: Session,
    person_id: int,
    kind: str,
    data: dict[str, Any],
    dedup_key: str,
    *,
    now: datetime | None = None,
) -> Notification:
    """Queue a notification of ``kind`` to ``person_id``; flushes, never commits.

    Idempotent on ``dedup_key`` (e.g. ``expiry:{credential}:{days_before}``): a second
    call returns the existing notification and queues nothing. The channel is picked
    from the person's identities (see ``jobs.push.kinds.DEFAULT_CHANNELS``); a person
    with none gets a failed notification with the reason and no send.
    """
    existing = session.scalar(select(Notification).where(Notification.dedup_key == dedup_key))
    if existing is not None:
        return existing
    pk = push_kind(kind)
    content = pk.render(data)
    channel, recipient, template_id = pick_channel(session, person_id, pk)
    n = Notification(
        person_id=person_id,
        channel=channel or Channel.console,
        kind=kind,
        template_id=template_id,
        recipient=recipient,
        content=content,
        dedup_key=dedup_key,
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(n)
    except IntegrityError:  # a concurrent call with the same key won
        return session.scalars(select(Notification).where(Notification.dedup_key == dedup_key)).one()
    if channel is None:
        n.status, n.error = NotificationStatus.failed, NO_CHANNEL
        return n
    outbox.add(session, "push.send", {"notification_id": n.id}, dedup_key=f"push:{dedup_key}")
    return n


def pick_channel(
    session: Session, person_id: int, pk: PushKind
) -> tuple[Channel | None, str | None, str | None]:
    """(channel, recipient id, template id) for the first usable channel of the kind."""
    ids: dict[IdentityKind, str] = {}
    for ident in session.scalars(
        select(Identity).where(Identity.person_id == person_id).order_by(Identity.id.desc())
    ):
        ids.setdefault(ident.kind, ident.external_id)
    for ch in pk.channels:
        if ch == Channel.wechat_subscribe and pk.mp_template_id and IdentityKind.wechat_mp in ids:
            if _credits(session, person_id, pk.mp_template_id) > 0:
                return ch, ids[IdentityKind.wechat_mp], pk.mp_template_id
        elif ch == Channel.wechat_template and pk.oa_template_id and IdentityKind.wechat_oa in ids:
            return ch, ids[IdentityKind.wechat_oa], pk.oa_template_id
        elif ch == Channel.dingtalk_work and IdentityKind.dingtalk in ids:
            return ch, ids[IdentityKind.dingtalk], None
        elif ch == Channel.wechat_custom and IdentityKind.wechat_oa in ids:
            return ch, ids[IdentityKind.wechat_oa], None
        elif ch == Channel.console:
            return ch, None, None
    return None, None, None


def _credits(session: Session, person_id: int, template_id: str) -> int:
    value = session.scalar(
        select(SubscriptionCredit.credits).where(
            SubscriptionCredit.person_id == person_id, SubscriptionCredit.template_id == template_id
        )
    )
    return value or 0


def accept_subscriptions(
    session: Session, person_id: int, template_ids: list[str], *, now: datetime | None = None
) -> dict[str, int]:
    """+1 credit per accepted template (what ``wx.requestSubscribeMessage`` reported);
    returns the credits now held. Flushes. Unknown template ids: ValidationFailed, nothing
    written. Not idempotent by itself: the API route replays by Idempotency-Key."""
    known = subscribe_template_ids()
    unknown = [t for t in template_ids if t not in known]
    if unknown:
        raise ValidationFailed(
            "包含未知的订阅消息模板", code="unknown_template", fields={"template_ids": "未知的订阅消息模板"}
        )
    now = now or utcnow()
    table = SubscriptionCredit.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for template_id in dict.fromkeys(template_ids):
        stmt = dialect.insert(table).values(
            person_id=person_id, template_id=template_id, credits=1, updated_at=now
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["person_id", "template_id"],
                set_={"credits": table.c.credits + 1, "updated_at": now},
            )
        )
    rows = session.execute(
        select(SubscriptionCredit.template_id, SubscriptionCredit.credits)
        .where(SubscriptionCredit.person_id == person_id, SubscriptionCredit.template_id.in_(template_ids))
        .execution_options(populate_existing=True)
    ).all()
    return {t: c for t, c in rows}
