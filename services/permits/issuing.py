"""Issue a permit/filing: number, validity from the rules, signed QR token, render job."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import outbox, signing
from models.permits.applications import (
    Application,
    Permit,
    PermitCredential,
    PermitForm,
    Purpose,
)
from models.permits.catalogue import Chemical
from models.permits.risk import RiskSignal
from services.keys import signing_ring
from services.permits import rules

TZ = ZoneInfo("Asia/Shanghai")
SIGNING_SCOPE = "default"
CERT_JOB = "permits.render_certificate"


def local_date(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, TZ).astimezone(UTC)


def _clean_record(session: Session, enterprise_id: int, now: datetime) -> bool:
    """Six months of transport permits without any risk signal (12-month validity)."""
    since = now - timedelta(days=30 * rules.CLEAN_RECORD_MONTHS)
    first = session.scalar(
        select(func.min(Permit.issued_at)).where(
            Permit.enterprise_id == enterprise_id, Permit.purpose == Purpose.transport
        )
    )
    signals = session.scalar(
        select(func.count(RiskSignal.id)).where(
            RiskSignal.enterprise_id == enterprise_id, RiskSignal.created_at >= since
        )
    )
    return first is not None and first <= since and not signals


def _validity(session: Session, app: Application, category: int, now: datetime) -> tuple[date, date, bool]:
    rule = rules.purpose_rule(app.purpose.value, category)
    today = local_date(now)
    if rule.validity_days is None:
        return max(app.window_start, today), app.window_end, rule.single_use
    days = rule.validity_days
    if app.purpose == Purpose.transport and _clean_record(session, app.enterprise_id, now):
        days = rules.CLEAN_RECORD_VALIDITY_DAYS
    return today, today + timedelta(days=days - 1), rule.single_use


def issue(session: Session, app: Application, credential_ids: list[int], kek: bytes, now: datetime) -> Permit:
    """Create the permit for ``app`` and queue its certificate (dedup ``permit-cert:{id}``)."""
    chem = session.get(Chemical, app.chemical_id)
    rule = rules.purpose_rule(app.purpose.value, chem.category)
    valid_from, valid_until, single_use = _validity(session, app, chem.category, now)
    permit = Permit(
        number="pending",
        purpose=app.purpose,
        form=PermitForm(rule.form),
        application_id=app.id,
        enterprise_id=app.enterprise_id,
        seller_enterprise_id=app.seller_enterprise_id,
        carrier_enterprise_id=app.carrier_enterprise_id,
        purchase_permit_id=app.purchase_permit_id,
        chemical_id=chem.id,
        quantity=app.quantity,
        remaining=app.quantity,
        unit=app.unit,
        vehicle_id=app.vehicle_id,
        driver_id=app.driver_id,
        valid_from=valid_from,
        valid_until=valid_until,
        single_use=single_use,
        issuing_authority=rules.ISSUING_AUTHORITY,
        token="",
        issued_at=now,
    )
    ring = signing_ring(session, SIGNING_SCOPE, kek)
    session.add(permit)
    session.flush()
    kind = "G" if app.purpose == Purpose.purchase else "Y"
    form = "X" if rule.form == "permit" else "B"
    permit.number = f"YZ{kind}{form}{chem.category}{now.astimezone(TZ):%Y%m%d}{permit.id:07d}"
    permit.token = signing.encode_token(
        kind=signing.KIND_PERMIT,
        object_id=permit.id,
        scope_id=app.enterprise_id,
        zone=chem.category,
        not_before=int(day_start(valid_from).timestamp()),
        not_after=int(day_start(valid_until + timedelta(days=1)).timestamp()),
        ring=ring,
    )
    for cid in dict.fromkeys(credential_ids):
        session.add(PermitCredential(permit_id=permit.id, credential_id=cid))
    session.flush()
    outbox.add(session, CERT_JOB, {"permit_id": permit.id}, dedup_key=f"permit-cert:{permit.id}")
    return permit
