"""The audit trail (admin): who did what to which object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import select

from core.api import ApiBlueprint, Ctx
from core.pagination import Page, PageQuery, paginate
from core.validation import Out
from models.platform import AuditEntry

bp = ApiBlueprint("audit", __name__, tag="admin", url_prefix="/admin/audit")


class AuditQuery(PageQuery):
    object_type: str | None = Field(None, max_length=64)
    object_id: str | None = Field(None, max_length=64)


class AuditOut(Out):
    id: int
    actor_id: int | None
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any]
    created_at: datetime


@bp.get("", query=AuditQuery, response=Page[AuditOut], roles=("admin",))
def list_audit(ctx: Ctx) -> dict:
    """审计日志（按时间倒序，游标分页）"""
    q = ctx.query
    stmt = select(AuditEntry)
    if q.object_type:
        stmt = stmt.where(AuditEntry.object_type == q.object_type)
    if q.object_id:
        stmt = stmt.where(AuditEntry.object_id == q.object_id)
    return paginate(ctx.session, stmt, AuditEntry.id, q, AuditOut.model_validate)
