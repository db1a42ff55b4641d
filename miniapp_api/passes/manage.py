"""Officer routes that keep an event's layout: the event itself, zone rings, gates and
signing keys (list, partial update, withdraw a key)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from core.api import Ctx
from core.pagination import Page, PageQuery, paginate
from core.validation import DbId, Model, Out
from miniapp_api.passes import bp, kek
from miniapp_api.passes.officer import OFFICER, PolicyIn, event_out
from miniapp_api.passes.schemas import Moment, optional
from models.passes import Gate, Zone
from services.passes import keyring, layout

# PATCH models: a field left out stays as it is (``optional``); null is refused except
# where it means something (no limit, unbind the device).


class EventPatch(Model):
    name: str = optional(min_length=1, max_length=200)
    starts_at: Moment = optional()
    ends_at: Moment = optional()
    timezone: str = optional(min_length=1, max_length=64, description="IANA 时区；已签发通行证后不可修改")
    org_unit_id: DbId = optional(description="活动所属辖区（须在本人辖区内）")
    policy: PolicyIn = optional(description="只修改给出的规则参数；值为 null 的参数恢复默认")


class ZoneOut(Out):
    ring: int
    name: str
    daily_capacity_visitor: int | None
    daily_capacity_vehicle: int | None
    max_inside: int | None


class ZonePatch(Model):
    name: str = optional(min_length=1, max_length=100)
    daily_capacity_visitor: int | None = Field(None, ge=0, le=10_000_000, description="null 为不限")
    daily_capacity_vehicle: int | None = Field(None, ge=0, le=10_000_000, description="null 为不限")
    max_inside: int | None = Field(None, ge=0, le=10_000_000, description="区域内人数上限；null 为不限")


class GateOut(Out):
    id: int
    event_id: int
    name: str
    ring: int
    direction: Literal["in", "out", "both"]
    vehicle: bool
    offline_capable: bool
    fail_closed: bool
    device_person_id: int | None
    created_at: datetime


class GatePatch(Model):
    name: str = optional(min_length=1, max_length=100)
    ring: int = optional(ge=1, le=9)
    direction: Literal["in", "out", "both"] = optional()
    vehicle: bool = optional()
    offline_capable: bool = optional()
    fail_closed: bool = optional()
    device_person_id: DbId | None = Field(None, description="闸机设备账号；null 为解除绑定")


class KeyOut(Out):
    kid: str
    status: Literal["active", "retired", "revoked"]
    created_at: datetime
    retired_at: datetime | None
    active_passes: int = Field(description="由该密钥签发、仍有效的通行证数")


class KeysOut(Out):
    keys: list[KeyOut] = Field(description="按创建时间排列")


class KeyRevokedOut(Out):
    kid: str
    status: Literal["revoked"]
    reissued: int = Field(description="已用当前密钥重新签发的通行证数（旧证随即作废）")


@bp.patch("/events/<int:event_id>", body=EventPatch, roles=OFFICER, extra_errors=(404, 409, 422))
def update_event(ctx: Ctx, event_id: int) -> dict:
    """修改活动（名称、起止时间、时区、辖区、规则参数；只改给出的字段）"""
    changes = ctx.body.model_dump(exclude_unset=True)
    if "policy" in changes:
        changes["policy"] = ctx.body.policy.model_dump(exclude_unset=True)
    event = layout.update_event(ctx.session, ctx.me, event_id, changes)
    ctx.session.refresh(event)
    return event_out(event)


@bp.get(
    "/events/<int:event_id>/zones",
    query=PageQuery,
    response=Page[ZoneOut],
    roles=OFFICER,
    extra_errors=(404,),
)
def list_zones(ctx: Ctx, event_id: int) -> dict:
    """区域层级列表（由外到内，游标分页）"""
    stmt = layout.zones_query(ctx.session, ctx.me, event_id)
    return paginate(ctx.session, stmt, Zone.ring, ctx.query, ZoneOut.model_validate, descending=False)


@bp.patch(
    "/events/<int:event_id>/zones/<int:ring>", body=ZonePatch, response=ZoneOut, roles=OFFICER,
    extra_errors=(404, 422),
)  # fmt: skip
def update_zone(ctx: Ctx, event_id: int, ring: int) -> ZoneOut:
    """修改区域（名称、每日名额、区域内人数上限；只改给出的字段）"""
    zone = layout.update_zone(ctx.session, ctx.me, event_id, ring, ctx.body.model_dump(exclude_unset=True))
    return ZoneOut.model_validate(zone)


@bp.get(
    "/events/<int:event_id>/gates",
    query=PageQuery,
    response=Page[GateOut],
    roles=OFFICER,
    extra_errors=(404,),
)
def list_gates(ctx: Ctx, event_id: int) -> dict:
    """闸机列表（按创建顺序，游标分页）"""
    stmt = layout.gates_query(ctx.session, ctx.me, event_id)
    return paginate(ctx.session, stmt, Gate.id, ctx.query, GateOut.model_validate, descending=False)


@bp.patch(
    "/gates/<int:gate_id>", body=GatePatch, response=GateOut, roles=OFFICER, extra_errors=(404, 409, 422)
)
def update_gate(ctx: Ctx, gate_id: int) -> GateOut:
    """修改闸机（名称、区域层级、方向、通道类型、离线核验、离线时是否拒绝放行、绑定设备）"""
    gate = layout.update_gate(ctx.session, ctx.me, gate_id, ctx.body.model_dump(exclude_unset=True))
    return GateOut.model_validate(gate)


@bp.get("/events/<int:event_id>/keys", response=KeysOut, roles=OFFICER, extra_errors=(404,))
def list_keys(ctx: Ctx, event_id: int) -> dict:
    """活动签名密钥（当前签发、已轮换、已停用）及各自签发的有效通行证数"""
    return {"keys": keyring.list_keys(ctx.session, ctx.me, event_id)}


@bp.post(
    "/events/<int:event_id>/keys/<kid>/revoke", response=KeyRevokedOut, roles=OFFICER,
    extra_errors=(404, 409),
)  # fmt: skip
def revoke_key(ctx: Ctx, event_id: int, kid: str) -> dict:
    """停用签名密钥：其签发的二维码在闸机一律判为密钥未知，并从离线核验包中移除；
    仍有效的通行证用当前密钥重新签发并通知持证人。当前签发密钥不能停用，须先轮换。"""
    return keyring.revoke_key(ctx.session, ctx.me, event_id, kid, kek=kek(ctx))
