"""Enterprises, members, vehicles, credentials, the catalogue and the rules."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from core.api import ANY, PUBLIC, Ctx
from core.validation import Model
from miniapp_api.permits.blueprint import Day, Id, bp
from services.permits import catalogue, credentials, enterprises, rules


class EnterpriseIn(Model):
    name: str = Field(min_length=2, max_length=200)
    uscc: str = Field(max_length=40, description="统一社会信用代码（校验 GB 32100）")
    kind: str = Field(description="producer / trader / user / carrier")
    org_unit_id: Id | None = None
    sites: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )


class MemberIn(Model):
    person_id: Id
    role: str = Field(description="manager / warehouse / sales / driver")


class VehicleIn(Model):
    plate: str = Field(max_length=16)
    plate_colour: str = Field(max_length=8)


class CredentialIn(Model):
    kind: str
    number: str = Field(min_length=1, max_length=64)
    valid_until: Day
    valid_from: Day | None = None
    vehicle_id: Id | None = None
    person_id: Id | None = None
    category: int | None = Field(None, ge=1, le=3)
    scope: str = Field("", max_length=200)


@bp.post("/enterprises", body=EnterpriseIn, roles=ANY, idempotent=True, status=201)
def register_enterprise(ctx: Ctx) -> dict:
    """登记企业（登记人成为专管员）"""
    b = ctx.body
    ent = enterprises.register(
        ctx.session, ctx.me, name=b.name, uscc=b.uscc, kind=b.kind, org_unit_id=b.org_unit_id, sites=b.sites
    )
    return {"id": ent.id, "name": ent.name, "uscc": ent.uscc, "kind": ent.kind.value}


@bp.post(
    "/enterprises/<int:enterprise_id>/members",
    body=MemberIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def add_member(ctx: Ctx, enterprise_id: int) -> dict:
    """添加企业成员（专管员操作）"""
    m = enterprises.add_member(ctx.session, ctx.me, enterprise_id, ctx.body.person_id, ctx.body.role)
    return {"id": m.id, "person_id": m.person_id, "role": m.role.value}


@bp.post(
    "/enterprises/<int:enterprise_id>/invitations",
    body=MemberIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def invite_member(ctx: Ctx, enterprise_id: int) -> dict:
    """邀请成员（对方确认后生效）"""
    m = enterprises.invite_member(ctx.session, ctx.me, enterprise_id, ctx.body.person_id, ctx.body.role)
    return {"id": m.id, "person_id": m.person_id, "role": m.role.value, "status": m.status.value}


@bp.post("/invitations/<int:member_id>/accept", roles=ANY)
def accept_invitation(ctx: Ctx, member_id: int) -> dict:
    """接受邀请"""
    m = enterprises.accept_invitation(ctx.session, ctx.me, member_id)
    return {"id": m.id, "enterprise_id": m.enterprise_id, "role": m.role.value, "status": m.status.value}


@bp.post(
    "/enterprises/<int:enterprise_id>/vehicles",
    body=VehicleIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def add_vehicle(ctx: Ctx, enterprise_id: int) -> dict:
    """登记车辆"""
    v = credentials.add_vehicle(ctx.session, ctx.me, enterprise_id, ctx.body.plate, ctx.body.plate_colour)
    return {"id": v.id, "plate": v.plate}


@bp.post(
    "/enterprises/<int:enterprise_id>/credentials",
    body=CredentialIn,
    roles=("enterprise",),
    idempotent=True,
    status=201,
)
def add_credential(ctx: Ctx, enterprise_id: int) -> dict:
    """登记证照（车辆、驾驶员、押运员、企业许可/备案）"""
    c = credentials.add_credential(ctx.session, ctx.me, enterprise_id, **ctx.body.model_dump())
    return {"id": c.id, "kind": c.kind.value, "valid_until": c.valid_until.isoformat()}


@bp.get("/chemicals", roles=PUBLIC)
def list_chemicals(ctx: Ctx) -> list:
    """易制毒化学品目录（含目录日期）"""
    return [
        {
            "id": c.id,
            "cas": c.cas,
            "name": c.name_zh,
            "name_en": c.name_en,
            "category": c.category,
            "unit": c.unit,
            "catalogue_date": c.catalogue_date.isoformat(),
        }
        for c in catalogue.list_active(ctx.session)
    ]


@bp.get("/rules", roles=PUBLIC)
def published_rules(ctx: Ctx) -> dict:
    """分类管理规则、风险阈值与星级权重（版本化配置）"""
    return rules.describe()
