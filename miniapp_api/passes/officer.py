"""Officer routes: events, zones, gates, keys, review queue, lists, alerts, dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from core.api import Ctx
from core.pagination import PageQuery
from core.validation import DbId, Model
from miniapp_api.passes import bp, decode_cursor, encode_cursor, kek
from miniapp_api.passes.citizen import application_out
from miniapp_api.passes.schemas import SinceQuery
from services.passes import dashboard, events, issuance, lists, review
from services.passes.rules import EVENT_POLICY_BOUNDS

OFFICER = ("officer",)


class ZoneIn(Model):
    ring: int = Field(ge=1, le=9)
    name: str = Field(min_length=1, max_length=100)
    daily_capacity_visitor: int | None = Field(None, ge=0)
    daily_capacity_vehicle: int | None = Field(None, ge=0)
    max_inside: int | None = Field(None, ge=0)


def _bounded(name: str, description: str):
    low, high = EVENT_POLICY_BOUNDS[name]
    return Field(None, ge=low, le=high, description=f"{description}（{low}–{high}）")


class PolicyIn(Model):
    """Overrides of the default rule parameters (services.passes.rules.RULE_SET)."""

    min_age: int | None = _bounded("min_age", "最小年龄")
    max_age: int | None = _bounded("max_age", "最大年龄")
    min_lead_hours: int | None = _bounded("min_lead_hours", "至少提前办理的小时数")
    max_lead_days: int | None = _bounded("max_lead_days", "最多提前办理的天数")


class EventIn(Model):
    name: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timezone: str = Field(
        "Asia/Shanghai",
        min_length=1,
        max_length=64,
        description="活动所在时区（IANA 名称）：来访日期、每日时段、每日名额与大屏统计均按此时区计算",
    )
    org_unit_id: DbId | None = Field(
        None,
        description="活动所属辖区（组织节点，须在本人辖区内）；缺省为创建民警的辖区。"
        "预警只推送给辖区覆盖该活动的民警",
    )
    zones: list[ZoneIn] = Field(min_length=1, max_length=9)
    policy: PolicyIn = Field(default_factory=PolicyIn, description="覆盖默认规则参数，如 min_lead_hours")


class GateIn(Model):
    name: str = Field(min_length=1, max_length=100)
    ring: int = Field(ge=1, le=9)
    direction: Literal["in", "out", "both"]
    vehicle: bool = False
    offline_capable: bool = True
    fail_closed: bool | None = None
    device_person_id: int | None = Field(None, ge=1)


class DecisionIn(Model):
    approve: bool
    note: str = Field(min_length=1, max_length=500)


class ReissueIn(Model):
    ring: int | None = Field(None, ge=1, le=9)


class RevokeIn(Model):
    reason: str = Field(min_length=1, max_length=200)


class WatchIn(Model):
    event_id: DbId | None = None
    reason: str = Field(min_length=1, max_length=200)
    severity: Literal["reject", "alert"]
    id_number: str | None = Field(None, max_length=32)
    plate: str | None = Field(None, max_length=16)
    plate_colour: Literal["blue", "yellow", "green", "white", "black"] | None = None
    name: str | None = Field(None, max_length=50)
    birth_date: date | None = None
    valid_until: AwareDatetime | None = None


class ResolveIn(Model):
    cleared: bool
    note: str = Field(min_length=1, max_length=500)


class AlertQuery(Model):
    status: Literal["open", "cleared", "confirmed"] | None = None


def event_out(event) -> dict:
    return {"id": event.id, "name": event.name, "starts_at": event.starts_at.isoformat(),
            "ends_at": event.ends_at.isoformat(), "timezone": event.timezone,
            "org_unit_id": event.org_unit_id, "policy": event.policy,
            "zones": [{"ring": z.ring, "name": z.name, "daily_capacity_visitor": z.daily_capacity_visitor,
                       "daily_capacity_vehicle": z.daily_capacity_vehicle, "max_inside": z.max_inside}
                      for z in event.zones]}  # fmt: skip


@bp.post("/events", body=EventIn, roles=OFFICER, idempotent=True, status=201, extra_errors=(422,))
def create_event(ctx: Ctx) -> dict:
    """创建活动（含嵌套区域层级与每日名额、时区、辖区）"""
    b = ctx.body
    zones = [events.ZoneSpec(**z.model_dump()) for z in b.zones]
    event = events.create_event(
        ctx.session,
        ctx.me,
        name=b.name,
        starts_at=b.starts_at,
        ends_at=b.ends_at,
        zones=zones,
        kek=kek(ctx),
        org_unit_id=b.org_unit_id,
        timezone=b.timezone,
        policy=b.policy.model_dump(exclude_none=True),
    )
    ctx.session.refresh(event)
    return event_out(event)


@bp.get("/events", roles=OFFICER)
def list_events(ctx: Ctx) -> list:
    """活动列表（本人辖区内的活动）"""
    return [event_out(e) for e in events.list_events(ctx.session, ctx.me)]


@bp.post(
    "/events/<int:event_id>/gates",
    body=GateIn,
    roles=OFFICER,
    idempotent=True,
    status=201,
    extra_errors=(404, 409, 422),
)
def add_gate(ctx: Ctx, event_id: int) -> dict:
    """新增闸机（位于某一区域层级的边界）"""
    g = events.add_gate(ctx.session, ctx.me, event_id, **ctx.body.model_dump())
    return {
        "id": g.id,
        "name": g.name,
        "ring": g.ring,
        "direction": g.direction.value,
        "fail_closed": g.fail_closed,
    }


@bp.post("/events/<int:event_id>/keys/rotate", roles=OFFICER, extra_errors=(404,))
def rotate_key(ctx: Ctx, event_id: int) -> dict:
    """轮换活动签名密钥（旧密钥签发的通行证仍可核验）"""
    return {"kid": events.rotate_key(ctx.session, ctx.me, event_id, kek(ctx))}


@bp.get("/events/<int:event_id>/review-queue", query=PageQuery, roles=OFFICER, extra_errors=(404,))
def review_queue(ctx: Ctx, event_id: int) -> dict:
    """人工审核队列（先到先审）"""
    q = ctx.query
    rows = review.queue(ctx.session, ctx.me, event_id, after_id=decode_cursor(q.cursor), limit=q.limit + 1)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return {
        "items": [application_out(ctx.session, a, full=True) for a in rows],
        "next_cursor": encode_cursor(rows[-1].id) if more else None,
    }


@bp.post(
    "/applications/<int:application_id>/decision", body=DecisionIn, roles=OFFICER, extra_errors=(404, 409)
)
def decide(ctx: Ctx, application_id: int) -> dict:
    """人工审核决定（通过/驳回，须填写意见，留痕）"""
    app = review.decide(
        ctx.session, ctx.me, application_id, approve=ctx.body.approve, note=ctx.body.note, kek=kek(ctx)
    )
    return application_out(ctx.session, app, full=True).model_dump(mode="json")


@bp.post("/passes/<int:pass_id>/revoke", body=RevokeIn, roles=OFFICER, extra_errors=(404, 409))
def revoke(ctx: Ctx, pass_id: int) -> dict:
    """作废通行证（进入吊销列表）"""
    c = issuance.revoke_by_officer(ctx.session, ctx.me, pass_id, ctx.body.reason)
    return {"id": c.id, "status": c.status.value}


@bp.post(
    "/passes/<int:pass_id>/reissue",
    body=ReissueIn,
    roles=("citizen", "officer"),
    idempotent=True,
    status=201,
    extra_errors=(404, 409),
)
def reissue(ctx: Ctx, pass_id: int) -> dict:
    """补发/变更通行证（旧证同时作废）"""
    c = issuance.reissue(ctx.session, ctx.me, pass_id, ring=ctx.body.ring, kek=kek(ctx))
    return {"id": c.id, "replaces_id": c.replaces_id, "ring": c.ring, "token": c.token}


@bp.get(
    "/events/<int:event_id>/revocations", query=SinceQuery, roles=("officer", "gate"), extra_errors=(404,)
)
def revocations(ctx: Ctx, event_id: int) -> dict:
    """吊销列表（可按版本号取增量）"""
    return issuance.revocations_for(ctx.session, ctx.me, event_id, ctx.query.since or 0)


@bp.post("/watch-entries", body=WatchIn, roles=OFFICER, idempotent=True, status=201, extra_errors=(422,))
def add_watch(ctx: Ctx) -> dict:
    """新增关注名单条目（随即复核信任名单）"""
    e = lists.add_watch_entry(ctx.session, ctx.me, **ctx.body.model_dump())
    return {"id": e.id, "subject": e.subject_hint, "severity": e.severity.value}


@bp.post("/watch-entries/<int:entry_id>/deactivate", roles=OFFICER, extra_errors=(404,))
def deactivate_watch(ctx: Ctx, entry_id: int) -> dict:
    """停用关注名单条目"""
    e = lists.deactivate_watch_entry(ctx.session, ctx.me, entry_id)
    return {"id": e.id, "active": e.active}


@bp.get("/events/<int:event_id>/alerts", query=AlertQuery, roles=OFFICER, extra_errors=(404,))
def alerts(ctx: Ctx, event_id: int) -> list:
    """预警列表"""
    rows = lists.list_alerts(ctx.session, ctx.me, event_id, ctx.query.status)
    fields = ("id", "kind", "severity", "message", "pass_id", "application_id", "gate_id")
    return [
        {
            **{f: getattr(a, f) for f in fields},
            "status": a.status.value,
            "created_at": a.created_at.isoformat(),
        }
        for a in rows
    ]


@bp.post("/alerts/<int:alert_id>/resolve", body=ResolveIn, roles=OFFICER, extra_errors=(404, 409))
def resolve(ctx: Ctx, alert_id: int) -> dict:
    """处置预警（排除后该人员进入信任名单）"""
    a = lists.resolve_alert(ctx.session, ctx.me, alert_id, cleared=ctx.body.cleared, note=ctx.body.note)
    return {"id": a.id, "status": a.status.value}


@bp.get("/events/<int:event_id>/dashboard", roles=OFFICER, extra_errors=(404,))
def dashboard_all(ctx: Ctx, event_id: int) -> dict:
    """大屏数据：申请状态/日、闸机通行/小时、区域内人数、未处置预警"""
    s, me = ctx.session, ctx.me
    return {
        "applications": dashboard.applications_by_status_day(s, me, event_id),
        "passages": dashboard.passages_per_gate_hour(s, me, event_id),
        "inside": dashboard.inside_per_ring(s, me, event_id, redis=ctx.app.extensions["zhizhi"].redis),
        "alerts": dashboard.open_alerts(s, me, event_id),
        "generated_at": datetime.now().astimezone().isoformat(),
    }
