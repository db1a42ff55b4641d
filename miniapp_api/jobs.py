"""Push subscriptions (mini-program), stored documents, and the operator view of jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Response
from pydantic import Field

from core.api import ANY, ApiBlueprint, Ctx
from core.pagination import Page, PageQuery, paginate
from core.validation import Model, Out
from jobs import ops
from jobs.documents import file_store, readable_document
from models.platform import OutboxItem
from services import notify

bp = ApiBlueprint("jobs", __name__, tag="jobs")


class SubscriptionsIn(Model):
    template_ids: list[str] = Field(
        ..., min_length=1, max_length=10, description="用户在 wx.requestSubscribeMessage 中同意的模板 ID"
    )


@bp.post("/push/subscriptions", body=SubscriptionsIn, roles=ANY, idempotent=True, status=201)
def accept_subscriptions(ctx: Ctx) -> dict:
    """记录小程序订阅消息授权（每个模板 +1 次可发送额度）"""
    return {"credits": notify.accept_subscriptions(ctx.session, ctx.me.person_id, ctx.body.template_ids)}


@bp.get("/files/<int:doc_id>", roles=ANY, content_type="application/octet-stream")
def download(ctx: Ctx, doc_id: int) -> Response:
    """下载本人的证件文件（通行证 PNG/PDF、许可证明 PDF）"""
    row = readable_document(ctx.session, ctx.me, doc_id)
    data = file_store().open(row.file_key)
    resp = Response(data, mimetype=row.content_type)
    resp.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{_quote(row.filename)}"
    resp.headers["ETag"] = row.sha256
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


class JobsQuery(PageQuery):
    status: Literal["failed", "stuck"] = Field("failed", description="failed=最终失败；stuck=运行超时")


class JobOut(Out):
    id: int
    kind: str
    queue: str
    status: str
    attempts: int
    max_attempts: int
    reason: str | None
    dedup_key: str | None
    payload: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@bp.get("/admin/jobs", query=JobsQuery, response=Page[JobOut], roles=("admin",))
def list_jobs(ctx: Ctx) -> dict:
    """失败或卡住的后台任务及原因（游标分页）"""
    q = ctx.query
    return paginate(
        ctx.session, ops.jobs_query(ctx.session, q.status), OutboxItem.id, q, ops.job_view(q.status)
    )


@bp.post("/admin/jobs/<int:item_id>/requeue", response=JobOut, roles=("admin",))
def requeue_job(ctx: Ctx, item_id: int) -> dict:
    """重新排队一个失败或卡住的任务"""
    return ops.requeue(ctx.session, item_id, actor_id=ctx.me.person_id)
