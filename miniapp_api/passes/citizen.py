"""Citizen routes: apply (individual, vehicle, group), list, read, cancel, pass card."""

from __future__ import annotations

from flask import Response

from core import pii
from core.api import ANY, Ctx
from core.errors import NotFound
from core.pagination import PageQuery
from miniapp_api.passes import bp, decode_cursor, encode_cursor, kek
from miniapp_api.passes.schemas import (
    ApplicationIn,
    ApplicationOut,
    GroupIn,
    PassOut,
    RuleResultOut,
)
from models.passes import Application, PassCredential, PassStatus
from services.passes import applications as svc
from services.passes import events as events_svc
from services.passes import verification


def officer_view(ctx: Ctx) -> bool:
    return ctx.me.has_any_role(("officer", "admin"))


def _to_input(body, person=None) -> svc.ApplicationInput:
    p = person or body
    vehicle = getattr(body, "kind", "visitor") == "vehicle"
    return svc.ApplicationInput(
        person=svc.PersonInput(p.name, p.id_number, p.mobile),
        purpose=body.purpose,
        host_unit=body.host_unit,
        visit_from=body.visit_from,
        visit_to=body.visit_to,
        ring=body.ring,
        time_from=body.time_from,
        time_to=body.time_to,
        plate=(body.plate or "") if vehicle else None,
        plate_colour=body.plate_colour if vehicle else None,
        vehicle_type=body.vehicle_type if vehicle else None,
        driving_licence=body.driving_licence if vehicle else None,
    )


def application_out(session, app: Application, *, full: bool) -> ApplicationOut:
    """An application as the API shows it. Every rule's result only with ``full`` (an
    officer's view): a citizen sees a generic outcome, never the watch or trust lists."""
    from sqlalchemy import select

    creds = session.scalars(
        select(PassCredential).where(PassCredential.application_id == app.id).order_by(PassCredential.id)
    )
    return ApplicationOut(
        id=app.id,
        event_id=app.event_id,
        group_id=app.group_id,
        kind=app.kind.value,
        status=app.status.value,
        ring=app.ring,
        name=pii.mask_name(app.name),
        id_number=pii.mask_resident_id(app.id_number),
        mobile=pii.mask_mobile(app.mobile),
        plate=pii.mask_plate(app.plate) if app.plate else None,
        visit_from=app.visit_from,
        visit_to=app.visit_to,
        result_message=verification.citizen_message(app),
        rules=[RuleResultOut.model_validate(r) for r in app.rule_results] if full else None,
        passes=[
            PassOut(
                id=c.id,
                ring=c.ring,
                status=c.status.value,
                token=c.token if c.status == PassStatus.active else None,
                valid_from=c.valid_from,
                valid_to=c.valid_to,
                card_png=f"/api/v1/passes/passes/{c.id}/card.png" if c.card_png_key else None,
                card_pdf=f"/api/v1/passes/passes/{c.id}/card.pdf" if c.card_pdf_key else None,
            )
            for c in creds
        ],
        created_at=app.created_at,
    )


@bp.post(
    "/events/<int:event_id>/applications", body=ApplicationIn, response=ApplicationOut, roles=ANY,
    idempotent=True, status=201, extra_errors=(404, 409, 422),
)  # fmt: skip
def apply(ctx: Ctx, event_id: int) -> ApplicationOut:
    """申请通行证（人员或车辆），提交后自动核验"""
    app = svc.create(ctx.session, ctx.me, event_id, _to_input(ctx.body), kek=kek(ctx))
    return application_out(ctx.session, app, full=officer_view(ctx))


@bp.post(
    "/events/<int:event_id>/group-applications", body=GroupIn, roles=ANY, idempotent=True, status=201,
    extra_errors=(404, 409, 422),
)  # fmt: skip
def apply_group(ctx: Ctx, event_id: int) -> dict:
    """团组申请：领队为每位成员申请，每人单独核验、单独发证"""
    members = [_to_input(ctx.body, m) for m in ctx.body.members]
    group, apps = svc.create_group(ctx.session, ctx.me, event_id, ctx.body.name, members, kek=kek(ctx))
    return {
        "group_id": group.id,
        "applications": [application_out(ctx.session, a, full=officer_view(ctx)) for a in apps],
    }


@bp.get("/applications", query=PageQuery, roles=ANY)
def my_applications(ctx: Ctx) -> dict:
    """我的申请（分页）"""
    q = ctx.query
    rows = svc.list_own(ctx.session, ctx.me, after_id=decode_cursor(q.cursor), limit=q.limit + 1)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return {
        "items": [application_out(ctx.session, a, full=officer_view(ctx)) for a in rows],
        "next_cursor": encode_cursor(rows[-1].id) if more else None,
    }


@bp.get("/applications/<int:application_id>", response=ApplicationOut, roles=ANY, extra_errors=(404,))
def my_application(ctx: Ctx, application_id: int) -> ApplicationOut:
    """申请详情（审核结果与通行证；民警可见每条核验规则的结果）"""
    return application_out(
        ctx.session, svc.get_own(ctx.session, ctx.me, application_id), full=officer_view(ctx)
    )


@bp.post(
    "/applications/<int:application_id>/cancel", response=ApplicationOut, roles=ANY, extra_errors=(404, 409)
)
def cancel(ctx: Ctx, application_id: int) -> ApplicationOut:
    """取消申请（已发通行证随即作废）"""
    return application_out(
        ctx.session, svc.cancel(ctx.session, ctx.me, application_id), full=officer_view(ctx)
    )


def _card(ctx: Ctx, pass_id: int, attr: str, mimetype: str) -> Response:
    from core.files import LocalFileStore

    credential = ctx.session.get(PassCredential, pass_id)
    if credential is None:
        raise NotFound("通行证卡片不存在或尚未生成", code="card_not_found")
    svc.get_own(ctx.session, ctx.me, credential.application_id)
    if getattr(credential, attr) is None:
        raise NotFound("通行证卡片不存在或尚未生成", code="card_not_found")
    data = LocalFileStore(ctx.settings.file_store_dir).open(getattr(credential, attr))
    return Response(data, mimetype=mimetype)


@bp.get("/passes/<int:pass_id>/card.png", roles=ANY, content_type="image/png", extra_errors=(404,))
def card_png(ctx: Ctx, pass_id: int) -> Response:
    """通行证卡片 PNG"""
    return _card(ctx, pass_id, "card_png_key", "image/png")


@bp.get("/passes/<int:pass_id>/card.pdf", roles=ANY, content_type="application/pdf", extra_errors=(404,))
def card_pdf(ctx: Ctx, pass_id: int) -> Response:
    """通行证卡片 PDF（打印）"""
    return _card(ctx, pass_id, "card_pdf_key", "application/pdf")


@bp.get("/events/<int:event_id>", roles=ANY, extra_errors=(404,))
def event_detail(ctx: Ctx, event_id: int) -> dict:
    """活动信息与区域层级（申请前查看）"""
    event = events_svc.get_event(ctx.session, event_id)
    return {
        "id": event.id,
        "name": event.name,
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "zones": [{"ring": z.ring, "name": z.name} for z in event.zones],
    }
