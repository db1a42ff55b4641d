"""Signing keys kept in the database (private halves encrypted with ``SIGNING_KEK``).

Each scope (``default`` for permits, ``event:<id>`` for an event's passes) has its own
keys; rotation retires the active key (it still verifies) and creates a new one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import signing
from core.db import utcnow
from core.pii import FieldCipher
from models.platform import SigningKey, SigningKeyStatus


def _cipher(kek: bytes) -> FieldCipher:
    return FieldCipher({1: kek}, 1)


def _records(session: Session, scope: str, kek: bytes | None) -> list[signing.KeyRecord]:
    rows = session.scalars(
        select(SigningKey).where(SigningKey.scope == scope).order_by(SigningKey.created_at)
    )
    out = []
    for row in rows:
        private = None
        if kek is not None and row.private_key_enc is not None and row.status == SigningKeyStatus.active:
            private = bytes.fromhex(_cipher(kek).decrypt(row.private_key_enc, row.kid.encode()))
        out.append(signing.KeyRecord(row.kid, row.public_key, private, row.status.value, row.created_at))
    return out


def _store(session: Session, scope: str, record: signing.KeyRecord, kek: bytes) -> None:
    enc = _cipher(kek).encrypt(record.private_key.hex(), record.kid.encode()) if record.private_key else None
    session.add(
        SigningKey(
            kid=record.kid,
            scope=scope,
            public_key=record.public_key,
            private_key_enc=enc,
            status=SigningKeyStatus(record.status),
            created_at=record.created_at,
        )
    )


def signing_ring(session: Session, scope: str, kek: bytes) -> signing.KeyRing:
    """The key ring of ``scope`` with its active private key; creates the first key."""
    records = _records(session, scope, kek)
    if not any(r.status == "active" and r.private_key for r in records):
        record = signing.generate_key()
        _store(session, scope, record, kek)
        session.flush()
        records.append(record)
    return signing.KeyRing(records)


def verify_ring(session: Session, scope: str) -> signing.KeyRing:
    """Public keys only (what a verifier needs)."""
    return signing.KeyRing(_records(session, scope, None))


def rotate(session: Session, scope: str, kek: bytes) -> str:
    """Retire the active key of ``scope`` and create a new one; returns the new kid."""
    for row in session.scalars(
        select(SigningKey).where(SigningKey.scope == scope, SigningKey.status == SigningKeyStatus.active)
    ):
        row.status = SigningKeyStatus.retired
        row.retired_at = utcnow()
        row.private_key_enc = None  # a retired key never signs again
    record = signing.generate_key()
    _store(session, scope, record, kek)
    session.flush()
    return record.kid


def revoke(session: Session, kid: str) -> None:
    row = session.get(SigningKey, kid)
    if row is not None:
        row.status = SigningKeyStatus.revoked
        row.private_key_enc = None
        session.flush()


def public_key_set(session: Session, scope: str | None = None) -> dict:
    stmt = select(SigningKey)
    if scope:
        stmt = stmt.where(SigningKey.scope == scope)
    rows = list(session.scalars(stmt.order_by(SigningKey.created_at)))
    records = [signing.KeyRecord(r.kid, r.public_key, None, r.status.value, r.created_at) for r in rows]
    out = signing.public_key_set(records)
    scopes = {r.kid: r.scope for r in rows}
    for key in out["keys"]:
        key["scope"] = scopes.get(key["kid"])
    return out
