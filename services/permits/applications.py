"""Purchase and transport applications: validate, run the instant check, issue or queue.

Bad input raises ValidationFailed/Forbidden and writes nothing. A failed instant check
is recorded as a refused application (audit) and raised as ``instant_check_failed``
listing every failing rule; nothing is issued.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Actor
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.identity import Person
from models.permits.applications import Application, ApplicationStatus, Permit, Purpose
from models.permits.enterprises import Enterprise, EnterpriseKind, Vehicle
from models.platform import AuditEntry
from services.permits import catalogue, instant_check, issuing, rules
from services.permits.enterprises import get_enterprise, require_member, require_regulator

MAX_LEAD_DAYS = 30  # a transport window starts within a month of applying
MAX_WINDOW_DAYS = 31


def _window(start: date, end: date, now: datetime) -> None:
    if end < start:
        raise ValidationFailed(
            "运输结束日期早于开始日期", code="invalid_window", fields={"window_end": "早于开始日期"}
        )
    today = issuing.local_date(now)
    if end < today:
        raise ValidationFailed("运输期已过", code="window_in_past", fields={"window_end": "运输期已过"})
    if start > today + timedelta(days=MAX_LEAD_DAYS) or (end - start).days > MAX_WINDOW_DAYS:
        msg = f"运输期须在{MAX_LEAD_DAYS}天内开始，且不超过{MAX_WINDOW_DAYS}天"
        raise ValidationFailed(msg, code="invalid_window", fields={"window_end": msg})


def _record(session: Session, app: Application, res: instant_check.CheckResult) -> None:
    app.rules_version = rules.VERSION
    if not res.passed:
        app.status, app.reasons = ApplicationStatus.refused, res.failures
    elif res.review:
        app.status, app.reasons = ApplicationStatus.pending_review, res.review
    else:
        app.status, app.reasons = ApplicationStatus.issued, []
    session.add(app)
    session.flush()
    session.add(
        AuditEntry(
            actor_id=app.applicant_id,
            action=f"application.{app.status.value}",
            object_type="permit_application",
            object_id=str(app.id),
            data={"reasons": app.reasons, "rules_version": rules.VERSION},
        )
    )


def _finish(
    session: Session, app: Application, res: instant_check.CheckResult, kek: bytes, now: datetime
) -> tuple[Application, Permit | None]:
    _record(session, app, res)
    if app.status == ApplicationStatus.refused:
        session.flush()
        raise ValidationFailed(
            "秒核未通过：" + "；".join(f["message"] for f in res.failures),
            code="instant_check_failed",
            details={"application_id": app.id, "reasons": res.failures},
            keep_changes=True,
        )
    permit = (
        issuing.issue(session, app, res.credentials, kek, now)
        if app.status == ApplicationStatus.issued
        else None
    )
    return app, permit


def apply_transport(
    session: Session,
    actor: Actor,
    *,
    enterprise_id: int,
    purchase_permit_id: int,
    carrier_enterprise_id: int,
    vehicle_id: int,
    plate: str,
    driver_id: int,
    escort_id: int | None,
    quantity: Decimal,
    unit: str,
    window_start: date,
    window_end: date,
    kek: bytes,
    now: datetime | None = None,
) -> tuple[Application, Permit | None]:
    """Submit a transport application; issued at once, queued for a regulator, or refused.

    Side effects: the application, an audit row; when issued a permit/filing and a
    certificate-render outbox row. Not idempotent itself (the edge's Idempotency-Key is).
    """
    now = now or utcnow()
    applicant = require_member(session, actor, enterprise_id, "manager")
    purchase = session.get(Permit, purchase_permit_id)
    if purchase is None or purchase.purpose != Purpose.purchase:
        raise NotFound("购买许可/备案不存在", code="purchase_permit_not_found")
    if enterprise_id not in (purchase.enterprise_id, purchase.seller_enterprise_id, carrier_enterprise_id):
        raise Forbidden("本企业不是该购买许可/备案的当事方", code="not_permit_party")
    chem = catalogue.chemical(session, purchase.chemical_id)
    catalogue.check_quantity(chem, quantity, unit)
    _window(window_start, window_end, now)
    carrier = get_enterprise(session, carrier_enterprise_id)
    if carrier.kind != EnterpriseKind.carrier:
        raise ValidationFailed(
            "承运企业类型应为运输企业", code="not_a_carrier", fields={"carrier_enterprise_id": "不是运输企业"}
        )
    for field, pid in (("driver_id", driver_id), ("escort_id", escort_id)):
        if pid is not None and session.get(Person, pid) is None:
            raise ValidationFailed("人员不存在", code="person_not_found", fields={field: "人员不存在"})
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None or vehicle.enterprise_id != carrier.id:
        msg = "车辆及其证照不属于承运企业"
        raise ValidationFailed(msg, code="credential_not_owned", fields={"vehicle_id": msg})
    res = instant_check.check_transport(
        session,
        applicant=applicant,
        carrier=carrier,
        purchase=purchase,
        chem=chem,
        vehicle=vehicle,
        plate=plate,
        driver_id=driver_id,
        escort_id=escort_id,
        quantity=Decimal(str(quantity)),
        start=window_start,
        end=window_end,
    )
    app = Application(
        purpose=Purpose.transport,
        enterprise_id=applicant.id,
        applicant_id=actor.person_id,
        chemical_id=chem.id,
        quantity=Decimal(str(quantity)),
        unit=unit,
        seller_enterprise_id=purchase.seller_enterprise_id,
        carrier_enterprise_id=carrier.id,
        purchase_permit_id=purchase.id,
        vehicle_id=vehicle.id,
        driver_id=driver_id,
        escort_id=escort_id,
        plate=plate,
        window_start=window_start,
        window_end=window_end,
        created_at=now,
    )
    return _finish(session, app, res, kek, now)


def apply_purchase(
    session: Session,
    actor: Actor,
    *,
    enterprise_id: int,
    seller_enterprise_id: int,
    chemical_id: int,
    quantity: Decimal,
    unit: str,
    kek: bytes,
    now: datetime | None = None,
) -> tuple[Application, Permit | None]:
    """Submit a purchase application (buyer's manager). Same outcomes as transport."""
    now = now or utcnow()
    buyer = require_member(session, actor, enterprise_id, "manager")
    chem = catalogue.chemical(session, chemical_id)
    catalogue.check_quantity(chem, quantity, unit)
    seller = get_enterprise(session, seller_enterprise_id)
    if seller.id == buyer.id:
        raise ValidationFailed(
            "销售企业不能是本企业", code="seller_is_buyer", fields={"seller_enterprise_id": "不能是本企业"}
        )
    today = issuing.local_date(now)
    res = instant_check.check_purchase(session, buyer=buyer, seller=seller, chem=chem, on=today)
    app = Application(
        purpose=Purpose.purchase,
        enterprise_id=buyer.id,
        applicant_id=actor.person_id,
        chemical_id=chem.id,
        quantity=Decimal(str(quantity)),
        unit=unit,
        seller_enterprise_id=seller.id,
        window_start=today,
        window_end=today,
        created_at=now,
    )
    return _finish(session, app, res, kek, now)


def review_queue(session: Session, actor: Actor) -> list[Application]:
    """Applications waiting for a regulator whose jurisdiction covers the enterprise."""
    rows = session.scalars(
        select(Application)
        .where(Application.status == ApplicationStatus.pending_review)
        .order_by(Application.id)
    )
    out = []
    for app in rows:
        try:
            require_regulator(session, actor, get_enterprise(session, app.enterprise_id))
        except Forbidden:
            continue
        out.append(app)
    return out


def decide(
    session: Session,
    actor: Actor,
    application_id: int,
    *,
    approve: bool,
    note: str,
    kek: bytes,
    now: datetime | None = None,
) -> tuple[Application, Permit | None]:
    """A regulator approves (permit issued) or rejects a queued application; audited."""
    now = now or utcnow()
    app = session.get(Application, application_id, with_for_update=True)
    if app is None:
        raise NotFound("申请不存在", code="application_not_found")
    require_regulator(session, actor, session.get(Enterprise, app.enterprise_id))
    if app.status != ApplicationStatus.pending_review:
        raise Conflict("该申请不在待审核状态", code="application_not_pending")
    credential_ids: list[int] = []
    if approve:
        res = _recheck(session, app, now)
        if res.failures:
            raise Conflict(
                "审核期间情况变化，规则已不满足：" + "；".join(f["message"] for f in res.failures),
                code="checks_no_longer_pass",
                details={"reasons": res.failures},
            )
        credential_ids = res.credentials
    app.status = ApplicationStatus.approved if approve else ApplicationStatus.rejected
    app.decided_by_id, app.decision_note, app.decided_at = actor.person_id, note, now
    session.add(
        AuditEntry(
            actor_id=actor.person_id,
            action=f"application.{app.status.value}",
            object_type="permit_application",
            object_id=str(app.id),
            data={"note": note},
        )
    )
    session.flush()
    permit = issuing.issue(session, app, credential_ids, kek, now) if approve else None
    return app, permit


def _recheck(session: Session, app: Application, now: datetime) -> instant_check.CheckResult:
    """Run the rules again at decision time (credentials may have lapsed while queued)."""
    chem = catalogue.chemical(session, app.chemical_id)
    ent = get_enterprise(session, app.enterprise_id)
    if app.purpose == Purpose.purchase:
        seller = get_enterprise(session, app.seller_enterprise_id)
        return instant_check.check_purchase(
            session, buyer=ent, seller=seller, chem=chem, on=issuing.local_date(now)
        )
    return instant_check.check_transport(
        session,
        applicant=ent,
        carrier=get_enterprise(session, app.carrier_enterprise_id),
        purchase=session.get(Permit, app.purchase_permit_id),
        chem=chem,
        vehicle=session.get(Vehicle, app.vehicle_id),
        plate=app.plate,
        driver_id=app.driver_id,
        escort_id=app.escort_id,
        quantity=app.quantity,
        start=app.window_start,
        end=app.window_end,
    )
