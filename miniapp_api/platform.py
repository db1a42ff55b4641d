"""Cross-domain endpoints: the published signing-key set."""

from __future__ import annotations

from pydantic import Field

from core.api import PUBLIC, ApiBlueprint, Ctx
from core.validation import Model
from services import keys as keys_svc

bp = ApiBlueprint("platform", __name__, tag="platform")


class KeysQuery(Model):
    scope: str | None = Field(None, max_length=64, description="密钥范围，如 event:3；省略为全部")


@bp.get("/keys", query=KeysQuery, roles=PUBLIC)
def public_keys(ctx: Ctx) -> dict:
    """签名公钥集合（JWKS 格式），供闸机与第三方离线核验"""
    return keys_svc.public_key_set(ctx.session, ctx.query.scope)
