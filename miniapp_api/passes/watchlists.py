"""Officer routes over the watch list and the trust list: keyset pages, partial
updates, ending a trust entry early (ending a watch entry: ``officer.deactivate_watch``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from core.api import Ctx
from core.pagination import Page, PageQuery, paginate
from core.validation import DbId, Model, Out
from miniapp_api.passes import bp
from miniapp_api.passes.officer import OFFICER
from miniapp_api.passes.schemas import Moment, optional
from models.passes import TrustEntry, WatchEntry
from services.passes import entries


class WatchQuery(PageQuery):
    event_id: DbId | None = Field(None, description="只看适用于该活动的条目（含全局条目）")
    active: bool | None = Field(None, description="true 只看生效中的，false 只看已停用的")


class WatchOut(Out):
    id: int
    event_id: int | None = Field(description="为空表示适用于所有活动")
    match: Literal["exact", "partial"] = Field(description="exact：身份证号/车牌；partial：姓名加出生日期")
    subject: str = Field(description="脱敏的身份证号、车牌，或姓名与出生年份")
    reason: str
    severity: Literal["reject", "alert"]
    valid_until: datetime | None
    active: bool
    created_at: datetime
    revised_at: datetime | None = Field(description="最近一次加严（改为拒绝、延长有效期）的时间")


class WatchPatch(Model):
    reason: str = optional(min_length=1, max_length=200)
    severity: Literal["reject", "alert"] = optional()
    valid_until: Moment | None = Field(None, description="null 为长期有效")


class TrustQuery(PageQuery):
    active: bool | None = Field(None, description="true 只看生效中的，false 只看已结束的")


class TrustOut(Out):
    id: int
    event_id: int
    subject: str | None = Field(None, description="脱敏的人员姓名或车牌")
    ring: int
    valid_until: datetime
    source: str = Field(description="officer_cleared：民警排除预警；clean_passages：多次正常通行")
    active: bool
    ended_reason: str | None = Field(
        description="watchlist_changed / driver_watched：关注名单变更；officer_ended：民警提前结束"
    )
    ended_at: datetime | None
    suppressed_count: int = Field(description="已抑制的同类预警次数")
    created_at: datetime


class TrustPatch(Model):
    valid_until: Moment = optional(description="信任截止时间（须晚于当前时间）")
    ring: int = optional(ge=1, le=9, description="信任覆盖的区域层级（含外层）")


def _watch_out(entry: WatchEntry) -> WatchOut:
    return WatchOut(
        id=entry.id, event_id=entry.event_id, match="exact" if entry.subject_index else "partial",
        subject=entries.watch_subject(entry), reason=entry.reason, severity=entry.severity.value,
        valid_until=entry.valid_until, active=entry.active, created_at=entry.created_at,
        revised_at=entry.revised_at,
    )  # fmt: skip


def _trust_out(entry: TrustEntry, subjects: dict[str, str]) -> TrustOut:
    return TrustOut.model_validate(entry).model_copy(update={"subject": subjects.get(entry.subject_index)})


@bp.get("/watch-entries", query=WatchQuery, response=Page[WatchOut], roles=OFFICER, extra_errors=(404,))
def list_watch(ctx: Ctx) -> dict:
    """关注名单（最新在前，游标分页）"""
    q = ctx.query
    stmt = entries.watch_query(ctx.session, ctx.me, event_id=q.event_id, active=q.active)
    return paginate(ctx.session, stmt, WatchEntry.id, q, _watch_out)


@bp.patch(
    "/watch-entries/<int:entry_id>", body=WatchPatch, response=WatchOut, roles=OFFICER,
    extra_errors=(404, 409, 422),
)  # fmt: skip
def update_watch(ctx: Ctx, entry_id: int) -> WatchOut:
    """修改关注名单条目（事由、处置方式、有效期；随即复核信任名单并同步闸机）"""
    changes = ctx.body.model_dump(exclude_unset=True)
    return _watch_out(entries.update_watch_entry(ctx.session, ctx.me, entry_id, changes))


@bp.get(
    "/events/<int:event_id>/trust-entries", query=TrustQuery, response=Page[TrustOut], roles=OFFICER,
    extra_errors=(404,),
)  # fmt: skip
def list_trust(ctx: Ctx, event_id: int) -> dict:
    """信任名单（最新在前，游标分页）"""
    stmt = entries.trust_query(ctx.session, ctx.me, event_id, active=ctx.query.active)
    page = paginate(ctx.session, stmt, TrustEntry.id, ctx.query, lambda e: e)
    subjects = entries.trust_subjects(ctx.session, event_id, {e.subject_index for e in page["items"]})
    return {**page, "items": [_trust_out(e, subjects) for e in page["items"]]}


@bp.patch(
    "/trust-entries/<int:entry_id>", body=TrustPatch, response=TrustOut, roles=OFFICER,
    extra_errors=(404, 409, 422),
)  # fmt: skip
def update_trust(ctx: Ctx, entry_id: int) -> TrustOut:
    """修改信任名单条目（截止时间、区域层级；随即同步闸机）"""
    entry = entries.update_trust_entry(ctx.session, ctx.me, entry_id, ctx.body.model_dump(exclude_unset=True))
    return _trust_out(entry, entries.trust_subjects(ctx.session, entry.event_id, {entry.subject_index}))


@bp.post("/trust-entries/<int:entry_id>/deactivate", response=TrustOut, roles=OFFICER, extra_errors=(404,))
def end_trust(ctx: Ctx, entry_id: int) -> TrustOut:
    """提前结束信任（该人员/车辆的同类预警恢复推送；随即同步闸机）"""
    entry = entries.end_trust_entry(ctx.session, ctx.me, entry_id)
    return _trust_out(entry, entries.trust_subjects(ctx.session, entry.event_id, {entry.subject_index}))
