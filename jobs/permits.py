"""Permits jobs: certificate PDFs, credential reminders, warning notifications."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import pii
from core.files import LocalFileStore
from jobs import queues
from jobs.context import get_app
from jobs.registry import PermanentError, job
from models.identity import Person
from models.permits.applications import Permit, Purpose
from models.permits.catalogue import Chemical
from models.permits.enterprises import Enterprise, Member, MemberRole, MemberStatus, Vehicle
from models.platform import OutboxItem


def _name(session: Session, enterprise_id: int | None) -> str | None:
    ent = session.get(Enterprise, enterprise_id) if enterprise_id else None
    return ent.name if ent else None


def cert_data(session: Session, permit: Permit, base_url: str):
    """The renderer's input for ``permit``: parties by name, the driver masked."""
    from jobs.render.permit_cert import CATEGORY_CN, PermitCertData

    chem = session.get(Chemical, permit.chemical_id)
    vehicle = session.get(Vehicle, permit.vehicle_id) if permit.vehicle_id else None
    driver = session.get(Person, permit.driver_id) if permit.driver_id else None
    purchase = session.get(Permit, permit.purchase_permit_id) if permit.purchase_permit_id else None
    form = "许可证" if permit.form.value == "permit" else "备案证明"
    kind = "购买" if permit.purpose == Purpose.purchase else "运输"
    return PermitCertData(
        token=permit.token,
        number=permit.number,
        title=f"{CATEGORY_CN[chem.category]}易制毒化学品{kind}{form}",
        kind=permit.purpose.value,
        category=chem.category,
        applicant=_name(session, permit.enterprise_id) or "",
        consignor=_name(session, permit.seller_enterprise_id),
        consignee=_name(session, purchase.enterprise_id if purchase else permit.enterprise_id),
        carrier=_name(session, permit.carrier_enterprise_id),
        chemical_name=chem.name_zh,
        cas=chem.cas,
        quantity=permit.quantity,
        unit=permit.unit,
        vehicle_plate=vehicle.plate if vehicle else None,
        driver_masked=pii.mask_name(driver.name) if driver else None,
        route=None,
        valid_from=permit.valid_from,
        valid_to=permit.valid_until,
        issuing_authority=permit.issuing_authority,
        verify_url=f"{base_url.rstrip('/')}/api/v1/permits/verify/{permit.number}",
        issued_at=permit.issued_at,
    )


@job("permits.render_certificate", queue=queues.CERTIFICATES)
def render_certificate(session: Session, item: OutboxItem) -> dict:
    """Render the permit's PDF into the file store and record its key and hash.

    Idempotent: a permit whose certificate is already recorded is left alone; the store
    is content-addressed, so a re-run after a crash writes the same key.
    """
    from jobs.render.permit_cert import render_permit_pdf

    permit = session.get(Permit, item.payload["permit_id"])
    if permit is None:
        raise PermanentError("permit not found")
    if permit.cert_path:
        return {"key": permit.cert_path, "skipped": True}
    settings = get_app().extensions["zhizhi"].settings
    stored = LocalFileStore(settings.file_store_dir).put(
        render_permit_pdf(cert_data(session, permit, settings.public_base_url)), "application/pdf", "pdf"
    )
    permit.cert_path, permit.cert_sha256 = stored.key, stored.sha256
    return {"key": stored.key, "sha256": stored.sha256}


@job("permits.notify_person", queue=queues.NOTIFICATIONS)
def notify_person(session: Session, item: OutboxItem) -> dict:
    """Notify one person (invitations); recorded like ``permits.notify`` until push lands."""
    return {"recipients": [item.payload["person_id"]], "text": item.payload.get("text", "")}


@job("permits.notify", queue=queues.NOTIFICATIONS)
def notify(session: Session, item: OutboxItem) -> dict:
    """Notify an enterprise's managers (credential reminders, warnings, escalations).

    Until the push transports land this records the recipients and text in the row's
    result (the console transport of the embedded default); it never sends twice
    because the outbox row carries the dedup key.
    """
    ent_id = item.payload["enterprise_id"]
    recipients = list(
        session.scalars(
            select(Member.person_id).where(
                Member.enterprise_id == ent_id,
                Member.role == MemberRole.manager,
                Member.status == MemberStatus.active,
            )
        )
    )
    return {"recipients": recipients, "text": item.payload.get("text", "")}


@job("permits.daily", queue=queues.MAINTENANCE)
def daily(session: Session, item: OutboxItem) -> dict:
    """Daily 09:00 run (reminders, expiry, overdue waybills, risk models); schedules the next.

    Idempotent: every step dedups (reminder keys, one signal per subject).
    """
    from core.db import utcnow
    from services.permits import ledger_drain, periodic

    ledger_drain.flush(get_app())  # the risk models read the ledger: file pending events first
    now = utcnow()
    report = periodic.run_daily(session, now)
    periodic.schedule(session, now)
    return report


@job("permits.hourly", queue=queues.MAINTENANCE)
def hourly(session: Session, item: OutboxItem) -> dict:
    """Hourly warning SLA escalation; schedules the next run."""
    from core.db import utcnow
    from services.permits import periodic

    now = utcnow()
    report = periodic.run_hourly(session, now)
    periodic.schedule(session, now)
    return report


@job("permits.hot_resync", queue=queues.MAINTENANCE)
def hot_resync(session: Session, item: OutboxItem) -> dict:
    """Tell Redis about ledger state written to the database while it was unreachable
    (stale counters to forget, first answers of events filed synchronously); see
    services/permits/hotsync.py. Raises while Redis is still down, so it is retried."""
    from services.permits import hotsync

    hot = hotsync.for_app(get_app())
    if hot is None:
        return {"skipped": "no write-behind ledger"}
    hotsync.apply(hot.redis, hot.keys, item.payload)
    return {"fields": len(item.payload["fields"]), "answers": len(item.payload["dedup"])}
