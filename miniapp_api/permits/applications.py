"""Applications (instant check), the regulator queue and public verification."""

from __future__ import annotations

from pydantic import Field

from core.api import PUBLIC, Ctx
from core.validation import Model
from miniapp_api.permits import views
from miniapp_api.permits.blueprint import Day, Id, Qty, bp, settled
from services.permits import applications, revocation, verify


class PurchaseIn(Model):
    enterprise_id: Id
    seller_enterprise_id: Id
    chemical_id: Id
    quantity: Qty
    unit: str = Field(max_length=8)


class TransportIn(Model):
    enterprise_id: Id
    purchase_permit_id: Id
    carrier_enterprise_id: Id
    vehicle_id: Id
    plate: str = Field(max_length=16)
    driver_id: Id
    escort_id: Id | None = None
    quantity: Qty
    unit: str = Field(max_length=8)
    window_start: Day
    window_end: Day


class DecisionIn(Model):
    approve: bool
    note: str = Field("", max_length=500)


class TokenIn(Model):
    token: str = Field(min_length=1, max_length=400)


@bp.post("/applications/purchase", body=PurchaseIn, roles=("enterprise",), idempotent=True, status=201)
def apply_purchase(ctx: Ctx) -> dict:
    """购买申请/备案：秒核通过即出证，第一类转监管审批"""
    settled(ctx)
    app, permit = applications.apply_purchase(
        ctx.session, ctx.me, **ctx.body.model_dump(), kek=ctx.settings.signing_kek
    )
    return views.application(app, permit)


@bp.post("/applications/transport", body=TransportIn, roles=("enterprise",), idempotent=True, status=201)
def apply_transport(ctx: Ctx) -> dict:
    """运输申请/备案：智能秒核（车辆、驾驶员、许可剩余量、企业风险码）"""
    settled(ctx)
    app, permit = applications.apply_transport(
        ctx.session, ctx.me, **ctx.body.model_dump(), kek=ctx.settings.signing_kek
    )
    return views.application(app, permit)


@bp.get("/review-queue", roles=("regulator",))
def review_queue(ctx: Ctx) -> list:
    """待监管部门审批的申请（本辖区）"""
    return [views.application(a, None) for a in applications.review_queue(ctx.session, ctx.me)]


@bp.post("/applications/<int:application_id>/decision", body=DecisionIn, roles=("regulator",))
def decide(ctx: Ctx, application_id: int) -> dict:
    """监管部门审批（留痕）"""
    app, permit = applications.decide(
        ctx.session,
        ctx.me,
        application_id,
        approve=ctx.body.approve,
        note=ctx.body.note,
        kek=ctx.settings.signing_kek,
    )
    return views.application(app, permit)


@bp.get("/verify/<number>", roles=PUBLIC)
def verify_number(ctx: Ctx, number: str) -> dict:
    """公开核验：按证明编号"""
    return verify.by_number(ctx.session, number)


@bp.post("/verify", body=TokenIn, roles=PUBLIC)
def verify_qr(ctx: Ctx) -> dict:
    """公开核验：扫描二维码（签名令牌）"""
    return verify.by_token(ctx.session, ctx.body.token)


class RevokeIn(Model):
    reason: str = Field(min_length=1, max_length=500)


@bp.post("/permits/<int:permit_id>/revoke", body=RevokeIn, roles=("regulator",))
def revoke(ctx: Ctx, permit_id: int) -> dict:
    """吊销许可/备案（留痕）"""
    settled(ctx)
    return views.permit_out(revocation.revoke(ctx.session, ctx.me, permit_id, ctx.body.reason))


@bp.get("/revoked", roles=PUBLIC)
def revoked(ctx: Ctx) -> dict:
    """已吊销证明列表（供离线核验）"""
    return revocation.revocation_list(ctx.session)
