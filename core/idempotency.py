"""``Idempotency-Key`` for creating POSTs.

The record is inserted in the same transaction as the business change, so either both
commit or neither does. A concurrent duplicate loses on the unique constraint, rolls
back and replays the winner's response. Only successful responses are stored: a refused
request wrote nothing, so running it again is harmless.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Response, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from core.api import Ctx, Endpoint

MAX_KEY = 128


def _scope(ctx: Ctx) -> str:
    return f"person:{ctx.actor.person_id}" if ctx.actor else "anon"


def _find(session, scope: str, key: str):
    from models.platform import IdempotencyRecord

    return session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )


def _replay(record, endpoint: str, digest: str) -> Response:
    if record.endpoint != endpoint or record.request_hash != digest:
        raise Conflict(
            "该幂等键已用于另一个请求，请换一个新的 Idempotency-Key",
            code="idempotency_key_reused",
            status=422,
        )
    resp = Response(record.response_body, status=record.status_code, mimetype="application/json")
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def check_key(key: str) -> None:
    if len(key) > MAX_KEY or not key.isprintable():
        raise ValidationFailed(fields={"Idempotency-Key": f"长度不能超过 {MAX_KEY} 个可见字符"})


def request_hash(ctx: Ctx) -> str:
    return hashlib.sha256(ctx.raw_body()).hexdigest()


def run(ctx: Ctx, ep: Endpoint, key: str, call: Callable[[], Response]) -> Response:
    check_key(key)
    from models.platform import IdempotencyRecord

    ext = current_app.extensions["zhizhi"]
    session = ctx.session
    scope = _scope(ctx)
    endpoint = f"{ep.method} {ctx.request_path}"
    digest = request_hash(ctx)

    existing = _find(session, scope, key)
    if existing is not None:
        return _replay(existing, endpoint, digest)

    resp = call()
    if 200 <= resp.status_code < 300:
        session.add(
            IdempotencyRecord(
                scope=scope,
                key=key,
                endpoint=endpoint,
                request_hash=digest,
                status_code=resp.status_code,
                response_body=resp.get_data(),
            )
        )
    try:
        ext.commit(session)
    except IntegrityError:
        session.rollback()
        winner = _find(session, scope, key)
        if winner is None:
            raise
        return _replay(winner, endpoint, digest)
    return resp
