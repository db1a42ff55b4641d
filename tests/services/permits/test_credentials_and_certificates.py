from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.files import LocalFileStore
from models.permits.applications import PermitStatus
from models.permits.credentials import CredentialStatus
from models.platform import OutboxItem
from services.permits import credentials
from tests.services.permits.factories import TODAY, purchase, transport


def test_certificate_pdf_appears_after_the_job_runs(app, db, world, run_jobs):
    pp = purchase(db, world)
    _app, permit = transport(db, world, pp)
    assert permit.cert_path is None
    run_jobs()
    db.refresh(permit)
    store = LocalFileStore(app.extensions["zhizhi"].settings.file_store_dir)
    assert store.open(permit.cert_path).startswith(b"%PDF")
    assert permit.cert_sha256


def test_reminders_at_30_7_1_days_have_dedup_keys_and_never_repeat(db, world):
    cred = world.creds["dq"]
    cred.valid_until = TODAY + timedelta(days=7)
    db.flush()
    assert credentials.queue_reminders(db, TODAY) == 1
    assert credentials.queue_reminders(db, TODAY) == 0
    keys = set(db.scalars(select(OutboxItem.dedup_key).where(OutboxItem.kind == "permits.notify")))
    assert f"expiry:{cred.id}:7" in keys


def test_expiry_marks_credential_and_flags_open_permits(db, world):
    pp = purchase(db, world)
    _app, permit = transport(db, world, pp, window_end=TODAY + timedelta(days=1))
    world.creds["rtc"].valid_until = TODAY + timedelta(days=1)
    db.flush()
    result = credentials.apply_expiry(db, TODAY + timedelta(days=2))
    assert result["expired"] == 1 and result["permits_flagged"] == 1
    assert world.creds["rtc"].status == CredentialStatus.expired
    assert permit.status == PermitStatus.flagged


def test_reminder_job_reaches_the_enterprise_managers(db, world, run_jobs):
    cred = world.creds["dl"]
    cred.valid_until = TODAY + timedelta(days=30)
    db.flush()
    credentials.queue_reminders(db, TODAY)
    run_jobs()
    row = db.scalar(select(OutboxItem).where(OutboxItem.dedup_key == f"expiry:{cred.id}:30"))
    db.refresh(row)
    assert row.status.value == "done"
    assert row.result["recipients"] == [world.carrier_mgr.id] and "30 天后" in row.result["text"]
