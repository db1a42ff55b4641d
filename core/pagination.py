"""Cursor pagination: ``?cursor=&limit=`` → ``{"items": [...], "next_cursor": ...}``.

The cursor is the last row's key, opaque to clients (urlsafe base64 of JSON). Keyset
pagination stays fast on large tables and stable while rows are added.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.errors import ValidationFailed
from core.validation import Model

T = TypeVar("T")


class PageQuery(Model):
    cursor: str | None = Field(None, max_length=200, description="上一页返回的 next_cursor")
    limit: int = Field(20, ge=1, le=100)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(fields={"cursor": "分页游标无效"}) from exc


def cursor_id(cursor: str) -> int:
    """The row id a cursor points after; a clear validation error for anything else."""
    value = decode_cursor(cursor)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationFailed(fields={"cursor": "分页游标无效"})
    return value


def paginate(
    session: Session,
    stmt: Select,
    key: InstrumentedAttribute,
    query: PageQuery,
    convert: Callable[[Any], Any],
    *,
    descending: bool = True,
) -> dict[str, Any]:
    """Keyset page over ``stmt`` ordered by the unique column ``key`` (usually the id)."""
    if query.cursor:
        after = decode_cursor(query.cursor)
        if not isinstance(after, int | str):
            raise ValidationFailed(fields={"cursor": "分页游标无效"})
        stmt = stmt.where(key < after if descending else key > after)
    stmt = stmt.order_by(key.desc() if descending else key.asc()).limit(query.limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = encode_cursor(getattr(rows[-1], key.key)) if more and rows else None
    return {"items": [convert(r) for r in rows], "next_cursor": next_cursor}
