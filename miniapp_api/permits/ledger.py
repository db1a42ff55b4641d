"""Flow ledger events, corrections and waybills."""

from __future__ import annotations

from pydantic import Field

from core.api import Ctx
from core.pagination import PageQuery
from core.validation import Model
from miniapp_api.permits import views
from miniapp_api.permits.blueprint import Id, Moment, Qty, bp, settled
from services.permits import hotsync, ledger, waybills


class EventIn(Model):
    kind: str
    chemical_id: Id
    quantity: Qty
    unit: str = Field(max_length=8)
    idempotency_key: str = Field(min_length=1, max_length=128, description="客户端生成，重试时不变")
    occurred_at: Moment | None = None
    site_id: Id | None = None
    waybill_id: Id | None = None


class CorrectionIn(Model):
    quantity: Qty
    reason: str = Field(min_length=1, max_length=500)
    idempotency_key: str = Field(min_length=1, max_length=128)


class WaybillIn(Model):
    transport_permit_id: Id
    quantity: Qty
    eta: Moment


@bp.post(
    "/enterprises/<int:enterprise_id>/events",
    body=EventIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def file_event(ctx: Ctx, enterprise_id: int) -> dict:
    """报送流向事件（同一幂等键只记一次）"""
    hot = hotsync.for_app(ctx.app)
    if hot is not None:  # write-behind: one Redis call; None = Redis unreachable
        resp = hot.file(ctx.me, enterprise_id, ctx.body)
        if resp is not None:
            return resp
    ev, created = ledger.file_event(ctx.session, ctx.me, enterprise_id, **ctx.body.model_dump())
    return {**views.event(ev), "created": created}


@bp.get("/enterprises/<int:enterprise_id>/events", query=PageQuery, roles=("enterprise", "regulator"))
def list_events(ctx: Ctx, enterprise_id: int) -> dict:
    """企业流向台账（仅本企业成员与辖区监管部门）"""
    settled(ctx)
    return ledger.events_page(ctx.session, ctx.me, enterprise_id, ctx.query, views.event)


@bp.post(
    "/events/<int:event_id>/corrections",
    body=CorrectionIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def request_correction(ctx: Ctx, event_id: int) -> dict:
    """申请更正（新事件，待另一人审批）"""
    settled(ctx)
    return views.event(ledger.request_correction(ctx.session, ctx.me, event_id, **ctx.body.model_dump()))


@bp.post("/events/<int:event_id>/approve", roles=("enterprise",))
def approve_correction(ctx: Ctx, event_id: int) -> dict:
    """审批更正（须为另一名专管员）"""
    settled(ctx)
    return views.event(ledger.approve_correction(ctx.session, ctx.me, event_id))


@bp.post("/waybills", body=WaybillIn, roles=("enterprise",), idempotent=True, status=201)
def create_waybill(ctx: Ctx) -> dict:
    """开具运单（一单贯通）"""
    settled(ctx)
    b = ctx.body
    return views.waybill(
        waybills.create(ctx.session, ctx.me, b.transport_permit_id, quantity=b.quantity, eta=b.eta)
    )


@bp.post("/waybills/<int:waybill_id>/close", roles=("enterprise",))
def close_waybill(ctx: Ctx, waybill_id: int) -> dict:
    """运单三方闭环（收货企业专管员）"""
    settled(ctx)
    return views.waybill(waybills.close(ctx.session, ctx.me, waybill_id))
