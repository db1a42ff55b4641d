"""Pass jobs: render the pass card, notify the holder, push alerts to officers, and
flush gate passages from the Redis stream into the database.

Notifications are recorded through a console transport (a log line and the outbox
row's result) until the shared push transports take them over.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import literal, or_, select

from core import outbox
from core.db import utcnow
from jobs.push.kinds import PushKind, register_kind
from jobs.queues import CERTIFICATES, MAINTENANCE, NOTIFICATIONS
from jobs.registry import PermanentError, job
from models.identity import OrgUnit, Person, Role, RoleGrant
from models.passes import Alert, Application, Event, PassCredential, PassStatus, Zone

log = logging.getLogger("zhizhi.passes")


def _settings():
    from jobs.context import get_app

    return get_app().extensions["zhizhi"].settings


def card_data(session, credential: PassCredential):
    from core import pii
    from jobs.render.pass_card import PassCardData

    app = session.get(Application, credential.application_id)
    event = session.get(Event, credential.event_id)
    zone = session.scalar(select(Zone).where(Zone.event_id == event.id, Zone.ring == credential.ring))
    return PassCardData(
        token=credential.token,
        pass_no=f"P{credential.event_id:03d}-{credential.id:08d}",
        event_name=event.name,
        ring_name=zone.name if zone else str(credential.ring),
        kind=app.kind.value,
        holder_masked=pii.mask_name(app.name),
        plate_masked=pii.mask_plate(app.plate) if app.plate else None,
        valid_from=credential.valid_from,
        valid_to=credential.valid_to,
        issued_at=credential.issued_at,
    )


@job("passes.render_card", queue=CERTIFICATES)
def render_card(session, item) -> dict:
    """Render the card (PNG + PDF) into the content-addressed store, then queue the
    holder notification. Idempotent: a rendered card is not rendered again, and equal
    bytes map to the same stored file anyway."""
    from core.files import LocalFileStore
    from jobs.render.pass_card import render_pass_card_pdf, render_pass_card_png

    credential = session.get(PassCredential, item.payload["pass_id"])
    if credential is None:
        raise PermanentError("pass not found")
    if credential.status != PassStatus.active:
        return {"skipped": "revoked"}
    if not (credential.card_png_key and credential.card_pdf_key):
        store = LocalFileStore(_settings().file_store_dir)
        data = card_data(session, credential)
        credential.card_png_key = store.put(render_pass_card_png(data), "image/png", "png").key
        credential.card_pdf_key = store.put(render_pass_card_pdf(data), "application/pdf", "pdf").key
    outbox.add(
        session,
        "passes.notify_holder",
        {"pass_id": credential.id, "event": "issued"},
        dedup_key=f"pass-notify:{credential.id}:issued",
    )
    return {"png": credential.card_png_key, "pdf": credential.card_pdf_key}


ISSUED = register_kind(
    PushKind(
        kind="passes.issued",
        title="通行证已签发",
        text="您的通行证已签发（{event}，{ring}），请在“我的通行证”中查看二维码。",
    )
)
REVOKED = register_kind(
    PushKind(
        kind="passes.revoked",
        title="通行证已作废",
        text="您的通行证（编号 {pass_id}）已作废，如有疑问请联系活动安保办公室。",
    )
)
ALERT = register_kind(PushKind(kind="passes.alert", title="安保预警", text="【安保预警】{message}"))
VISIT_REMINDER = register_kind(
    PushKind(
        kind="passes.visit_reminder",
        title="来访提醒",
        text="{who}明天（{day}）前往{event}，通行区域：{ring}，时段 {window}。"
        "请携带有效身份证件，在闸机出示通行证二维码。",
    )
)


@job("passes.notify_holder", queue=NOTIFICATIONS)
def notify_holder(session, item) -> dict:
    """Tell the applicant their pass was issued or revoked, through the push layer
    (services.notify picks the channel; the send is its own idempotent job)."""
    from services.notify import notify

    credential = session.get(PassCredential, item.payload["pass_id"])
    if credential is None:
        raise PermanentError("pass not found")
    app = session.get(Application, credential.application_id)
    event = session.get(Event, credential.event_id)
    what = item.payload["event"]
    zone = session.scalar(select(Zone).where(Zone.event_id == event.id, Zone.ring == credential.ring))
    ring = zone.name if zone else f"第 {credential.ring} 层区域"
    data = {"event": event.name, "ring": ring, "pass_id": credential.id}
    n = notify(session, app.applicant_id, f"passes.{what}", data, f"pass:{credential.id}:{what}")
    return {"to_person": app.applicant_id, "notification_id": n.id, "channel": str(n.channel)}


def officers_covering(session, event: Event) -> list[int]:
    """Active officers whose jurisdiction covers the event: an officer grant without a
    unit (the whole tree), or on the event's unit or one above it (``Actor.covers``). An
    event without a unit is covered by officers without one only."""
    path = session.scalar(select(OrgUnit.path).where(OrgUnit.id == event.org_unit_id))
    covers = RoleGrant.org_unit_id.is_(None)
    if path is not None:
        covers = or_(covers, literal(path).startswith(OrgUnit.path))
    return list(
        session.scalars(
            select(Person.id)
            .join(RoleGrant, RoleGrant.person_id == Person.id)
            .outerjoin(OrgUnit, OrgUnit.id == RoleGrant.org_unit_id)
            .where(RoleGrant.role == Role.officer, Person.active.is_(True), covers)
            .distinct()
            .order_by(Person.id)
        )
    )


@job("passes.alert_officers", queue=NOTIFICATIONS)
def alert_officers(session, item) -> dict:
    """Push an alert to the officers whose jurisdiction covers its event, through the
    push layer (one notification each; dedup per alert and officer, so a re-run sends
    nothing twice)."""
    from services.notify import notify

    alert = session.get(Alert, item.payload["alert_id"])
    if alert is None:
        raise PermanentError("alert not found")
    officers = officers_covering(session, session.get(Event, alert.event_id))
    if not officers:
        log.warning("alert %s: no officer's jurisdiction covers event %s", alert.id, alert.event_id)
    for officer_id in officers:
        notify(
            session,
            officer_id,
            "passes.alert",
            {"message": alert.message},
            f"pass-alert:{alert.id}:{officer_id}",
        )
    return {"to_persons": officers}


def flush_passages(app: Flask, *, limit: int = 1000) -> int:
    """Move every event's gate stream into the database (commit, then delete from the
    stream), move gate state left in the old key layout, resync gate state whose
    revocation version lags, and republish the watched passes (entries expire). Safe to
    run concurrently and repeatedly: inserts are idempotent on the scan nonce."""
    from services.passes import gate, hotlayout, hotstate, lists

    ext = app.extensions["zhizhi"]
    moved = 0
    with ext.db.session() as s:
        event_ids = list(s.scalars(select(Event.id)))
    for event_id in event_ids:
        while True:
            with ext.db.session() as s:
                ids = gate.drain(s, ext.redis, event_id, limit=limit)
            gate.ack(ext.redis, event_id, ids)
            moved += len(ids)
            if len(ids) < limit:
                break
        hotlayout.migrate(ext.redis, event_id)  # state a process on the old code wrote meanwhile
        with ext.db.session() as s:
            if gate.revocation_lag(s, ext.redis, event_id):
                hotstate.sync_event(ext.redis, s, event_id, utcnow())
            elif ext.redis.exists(hotstate.key(event_id, "flags")):
                # Watch entries run out (valid_until) without any change to the list, so
                # the gates' watched passes are recomputed each round; a publication that
                # came in meanwhile (an officer's change) is newer and wins.
                seen = hotstate.watch_version(ext.redis, event_id)
                flags = lists.watch_flags(s, event_id, utcnow())
                hotstate.replace_watched(ext.redis, event_id, *flags, expect=seen)
    return moved


@job("passes.flush_passages", queue=MAINTENANCE)
def flush_passages_job(session, item) -> dict:
    """Outbox-scheduled flush (e.g. a periodic row); the work is :func:`flush_passages`."""
    from jobs.context import get_app

    return {"moved": flush_passages(get_app())}
