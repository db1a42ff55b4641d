"""Pass API: citizens apply, officers manage and review, gate devices scan.

Routes live in ``citizen``, ``officer`` and ``gate``; they share this blueprint.
"""

from __future__ import annotations

from core import pagination
from core.api import ApiBlueprint
from core.errors import ValidationFailed

bp = ApiBlueprint("passes", __name__, tag="passes", url_prefix="/passes")


@bp.record_once
def _install_gate_state(state) -> None:
    from services.passes import hotstate

    ext = state.app.extensions["zhizhi"]
    hotstate.install(ext.redis, ext.db.engine)


def encode_cursor(last_id: int | None) -> str | None:
    """The shared cursor format (core.pagination): opaque, the last row's id."""
    return pagination.encode_cursor(last_id) if last_id is not None else None


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    value = pagination.decode_cursor(cursor)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed(fields={"cursor": "分页游标无效"})
    return value


def kek(ctx) -> bytes:
    return ctx.settings.signing_kek


from miniapp_api.passes import citizen, gate, manage, officer, watchlists  # noqa: E402

__all__ = ["bp", "citizen", "gate", "manage", "officer", "watchlists"]
