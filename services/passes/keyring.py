"""An event's signing keys as officers see and withdraw them.

Vocabulary of ``core.signing``: rotation makes the active key *retired* (it signs no
more, its passes still verify); withdrawing a key makes it *revoked* (nothing it signed
verifies: gates answer ``unknown_key``, and it leaves ``/api/v1/keys`` and the offline
bundles).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, NotFound
from models.passes import Application, PassCredential, PassStatus
from models.platform import AuditEntry, SigningKey, SigningKeyStatus
from services import keys
from services.passes import events, issuance, scope
from services.passes.layout import reload_gate_contexts


def list_keys(session: Session, actor: Actor, event_id: int) -> list[dict]:
    """The event's keys, oldest first, each with how many active passes it signed."""
    scope.officer_event(session, actor, event_id)
    rows = session.scalars(
        select(SigningKey)
        .where(SigningKey.scope == events.key_scope(event_id))
        .order_by(SigningKey.created_at)
    )
    counts = dict(
        session.execute(
            select(PassCredential.kid, func.count())
            .where(PassCredential.event_id == event_id, PassCredential.status == PassStatus.active)
            .group_by(PassCredential.kid)
        ).all()
    )
    return [
        {
            "kid": k.kid,
            "status": k.status.value,
            "created_at": k.created_at,
            "retired_at": k.retired_at,
            "active_passes": counts.get(k.kid, 0),
        }
        for k in rows
    ]


def revoke_key(
    session: Session, actor: Actor, event_id: int, kid: str, *, kek: bytes, now: datetime | None = None
) -> dict:
    """Withdraw a key of the event: its tokens answer ``unknown_key`` at the gates
    (within ``gate.CONTEXT_TTL`` seconds in every process; at once in this one) and it
    leaves the offline bundle. The active signing key is refused (``key_active``): the
    event would have no key to issue passes with, so an officer rotates first and then
    withdraws the old one. The holders are not left with dead QR codes: every active
    pass the key signed is re-issued with the active key in the same transaction (old
    token revoked, new card rendered and sent to the holder). Withdrawing a withdrawn
    key changes nothing."""
    scope.officer_event(session, actor, event_id)
    now = now or utcnow()
    row = session.get(SigningKey, kid, with_for_update=True)
    if row is None or row.scope != events.key_scope(event_id):
        raise NotFound("签名密钥不存在", code="key_not_found")
    if row.status == SigningKeyStatus.active:
        raise Conflict("该密钥正用于签发通行证，请先轮换密钥，再停用旧密钥", code="key_active")
    if row.status == SigningKeyStatus.revoked:
        return {"kid": kid, "status": row.status.value, "reissued": 0}
    keys.revoke(session, kid)
    row.retired_at = row.retired_at or now
    credentials = list(
        session.scalars(
            select(PassCredential)
            .where(PassCredential.event_id == event_id, PassCredential.kid == kid)
            .where(PassCredential.status == PassStatus.active)
            .order_by(PassCredential.id)
        )
    )
    for credential in credentials:
        app = session.get(Application, credential.application_id)
        issuance.revoke(session, credential, reason="key_revoked", now=now)
        issuance.issue(session, app, kek=kek, now=now, replaces=credential)
    session.add(
        AuditEntry(
            actor_id=actor.person_id, action="passes.key.revoke", object_type="signing_key", object_id=kid,
            data={"event_id": event_id, "reissued": len(credentials)},
        )
    )  # fmt: skip
    session.flush()
    reload_gate_contexts(session)
    return {"kid": kid, "status": row.status.value, "reissued": len(credentials)}
