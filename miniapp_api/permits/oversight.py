"""Risk codes, warnings and star ratings."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import select

from core.api import Ctx
from core.validation import Model
from miniapp_api.permits import views
from miniapp_api.permits.blueprint import bp, settled
from models.permits.risk import RiskSignal, SignalStatus
from services.permits import ratings, risk_colour, signals, warnings
from services.permits.enterprises import require_reader


class TextIn(Model):
    text: str = Field(min_length=1, max_length=2000)


class QuarterQuery(Model):
    quarter: str = Field(pattern=r"^20\d\dQ[1-4]$")


@bp.get("/enterprises/<int:enterprise_id>/risk", roles=("enterprise", "regulator"))
def risk_code(ctx: Ctx, enterprise_id: int) -> dict:
    """三色码及其依据（规则、输入、阈值、复评时间）"""
    settled(ctx)
    require_reader(ctx.session, ctx.me, enterprise_id)
    rows = ctx.session.scalars(
        select(RiskSignal).where(
            RiskSignal.enterprise_id == enterprise_id, RiskSignal.status == SignalStatus.open
        )
    )
    return {
        "colour": risk_colour.enterprise_colour(ctx.session, enterprise_id),
        "signals": [signals.explain(s) for s in rows],
    }


@bp.get("/warnings", roles=("enterprise", "regulator"))
def list_warnings(ctx: Ctx) -> list:
    """我可见的预警（部门辖区内或本企业）"""
    settled(ctx)
    return [views.warning(w) for w in warnings.list_for(ctx.session, ctx.me)]


@bp.post("/warnings/<int:warning_id>/acknowledge", roles=("regulator",))
def acknowledge(ctx: Ctx, warning_id: int) -> dict:
    """签收预警"""
    return views.warning(warnings.acknowledge(ctx.session, ctx.me, warning_id))


@bp.post("/warnings/<int:warning_id>/handle", body=TextIn, roles=("regulator",))
def handle(ctx: Ctx, warning_id: int) -> dict:
    """反馈处置情况"""
    return views.warning(warnings.handle(ctx.session, ctx.me, warning_id, ctx.body.text))


@bp.post("/warnings/<int:warning_id>/close", body=TextIn, roles=("regulator",))
def close(ctx: Ctx, warning_id: int) -> dict:
    """评估并办结"""
    return views.warning(warnings.close(ctx.session, ctx.me, warning_id, ctx.body.text))


@bp.post("/warnings/<int:warning_id>/answer", body=TextIn, roles=("enterprise",))
def answer(ctx: Ctx, warning_id: int) -> dict:
    """企业专管员说明情况"""
    return views.warning(warnings.answer(ctx.session, ctx.me, warning_id, ctx.body.text))


@bp.get("/enterprises/<int:enterprise_id>/rating", query=QuarterQuery, roles=("enterprise", "regulator"))
def rating(ctx: Ctx, enterprise_id: int) -> dict:
    """季度星级：得分、权重、环比变化、升星所需"""
    settled(ctx)
    return ratings.summary(ctx.session, ctx.me, enterprise_id, ctx.query.quarter)
