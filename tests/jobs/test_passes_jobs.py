"""Pass jobs: the card render and holder notification, as functions and through RQ."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.auth import load_actor
from models.passes import PassCredential
from models.platform import OutboxItem, OutboxStatus
from services.passes import applications, issuance
from tests.helpers import make_person, valid_id_number
from tests.services.passes.builders import make_world


def _approved_pass(app, session, seed: int) -> PassCredential:
    world = make_world(session, app, datetime.now(UTC))
    citizen = load_actor(session, make_person(session, "citizen").id)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    data = applications.ApplicationInput(
        person=applications.PersonInput("李四", valid_id_number(seed), "13900001111"),
        purpose="参会", host_unit="组委会", visit_from=day, visit_to=day, ring=2,
    )  # fmt: skip
    kek = app.extensions["zhizhi"].settings.signing_kek
    application = applications.create(session, citizen, world.event.id, data, kek=kek)
    return issuance.active_pass(session, application.id)


def test_card_render_is_idempotent_and_notifies_once(app, db, run_jobs):
    from jobs.passes import render_card

    credential = _approved_pass(app, db, 90)
    db.flush()
    run_jobs()  # inline mode runs the follow-up notification right after the render commits
    db.expire_all()
    png, pdf = credential.card_png_key, credential.card_pdf_key
    assert png.endswith(".png") and pdf.endswith(".pdf")
    item = db.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.render_card")).one()
    assert render_card(db, item) == {"png": png, "pdf": pdf}  # a second run changes nothing
    notices = db.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.notify_holder")).all()
    assert len(notices) == 1 and notices[0].status == OutboxStatus.done


def test_revoked_pass_is_not_rendered(app, db, run_jobs):
    credential = _approved_pass(app, db, 91)
    issuance.revoke(db, credential, reason="cancelled")
    db.flush()
    run_jobs()
    item = db.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.render_card")).one()
    assert item.result == {"skipped": "revoked"}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a real Redis for rq worker")
def test_real_rq_worker_renders_the_card_and_notifies(app, committed_db, test_env):
    credential = _approved_pass(app, committed_db, 92)
    app.extensions["zhizhi"].commit(committed_db)
    env = {**os.environ, **test_env}
    prefix = test_env["QUEUE_PREFIX"]
    for queue in ("certificates", "notifications"):
        subprocess.run(
            [sys.executable, "-m", "jobs.worker", "--burst", "--queues", prefix + queue],
            env=env, check=True, timeout=120,
        )  # fmt: skip
    committed_db.expire_all()
    assert committed_db.get(PassCredential, credential.id).card_png_key
    kinds = {r.kind: r.status for r in committed_db.scalars(select(OutboxItem))}
    assert kinds["passes.render_card"] == kinds["passes.notify_holder"] == OutboxStatus.done
