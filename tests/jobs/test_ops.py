"""Operator view: failed and stuck jobs with reasons, re-queueing (CLI and admin API)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import outbox
from core.db import utcnow
from jobs.registry import PermanentError, job
from jobs.runner import run_item
from models.platform import AuditEntry, OutboxItem, OutboxStatus
from tests.helpers import Api, make_person, token_for


@job("test.ops_refused")
def _refused(session, item):
    if not item.payload.get("fixed"):
        raise PermanentError("40003 invalid openid")
    return {"ok": True}


def _failed_and_stuck(app, db) -> tuple[int, int]:
    failed = outbox.add(db, "test.ops_refused", {})
    stuck = outbox.add(db, "test.ops_refused", {"fixed": True})
    row = db.get(OutboxItem, stuck)
    row.status, row.attempts, row.started_at = OutboxStatus.running, 1, utcnow() - timedelta(hours=1)
    db.commit()
    assert run_item(app, failed) == "failed"
    return failed, stuck


def test_cli_lists_failed_and_stuck_with_reasons_and_requeues(app, db) -> None:
    failed, stuck = _failed_and_stuck(app, db)
    cli = app.test_cli_runner()
    out = cli.invoke(args=["jobs", "failed"]).output
    assert f"#{failed} test.ops_refused" in out and "40003" in out
    out = cli.invoke(args=["jobs", "stuck"]).output
    assert f"#{stuck}" in out and "超过时限" in out
    assert "re-queued" in cli.invoke(args=["jobs", "requeue", str(failed)]).output
    db.expire_all()
    row = db.get(OutboxItem, failed)
    if not app.extensions["zhizhi"].settings.inline_jobs:
        assert row.status == OutboxStatus.pending and row.attempts == 0
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "job.requeue")).data["previous_error"]
    bad = cli.invoke(args=["jobs", "requeue", "999999"])
    assert bad.exit_code != 0 and "不存在" in bad.output


def test_admin_api_lists_and_requeues(app, db, client) -> None:
    failed, stuck = _failed_and_stuck(app, db)
    admin = Api(client, token_for(db, make_person(db, "admin")))
    body = admin.get("/admin/jobs?status=failed").get_json()["data"]
    assert [i["id"] for i in body["items"]] == [failed] and "40003" in body["items"][0]["reason"]
    body = admin.get("/admin/jobs?status=stuck").get_json()["data"]
    assert [i["id"] for i in body["items"]] == [stuck]
    resp = admin.post(f"/admin/jobs/{stuck}/requeue")
    assert resp.status_code == 200, resp.get_json()
    db.expire_all()
    assert db.get(OutboxItem, stuck).status in (OutboxStatus.pending, OutboxStatus.done)


def test_requeue_of_a_done_job_is_a_conflict(app, db, client) -> None:
    item = outbox.add(db, "test.ops_refused", {"fixed": True})
    db.commit()
    assert run_item(app, item) == "done"
    admin = Api(client, token_for(db, make_person(db, "admin")))
    resp = admin.post(f"/admin/jobs/{item}/requeue")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "job_not_requeueable"
    assert admin.post("/admin/jobs/999999/requeue").status_code == 404


def test_only_admins_see_jobs(db, client) -> None:
    worker = Api(client, token_for(db, make_person(db, "grid_worker")))
    assert worker.get("/admin/jobs").status_code == 403
    assert worker.get("/admin/jobs?status=bogus").status_code in (403, 422)
