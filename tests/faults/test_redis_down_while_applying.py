"""Redis unavailable while citizens apply: applications are still accepted (the outbox
rows wait in the database), and once Redis is back the reconciler hands them to a real
RQ worker, which renders the pass cards."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models.passes import PassCredential
from models.platform import OutboxItem, OutboxStatus
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.jobs.test_fault import PrivateRedis
from tests.services.passes.builders import make_world, visitor_body

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"), reason="needs PostgreSQL and a worker"
)


def test_applications_are_accepted_without_redis_and_jobs_run_after_it_returns(
    app, committed_db, test_env, tmp_path
) -> None:
    from core.app import create_app
    from jobs.maintenance import reconcile

    redis_server = PrivateRedis(tmp_path)
    redis_server.start()
    env = {**test_env, "REDIS_URL": redis_server.url, "QUEUE_PREFIX": "faults:"}
    second = create_app(env)
    s = committed_db
    world = make_world(s, second, datetime.now(UTC))
    citizens = [make_person(s, "citizen", name=f"居民{i}") for i in range(3)]
    tokens = [token_for(s, c) for c in citizens]
    s.commit()

    redis_server.stop()
    client = second.test_client()
    for i, token in enumerate(tokens):
        r = Api(client, token).post(
            f"/passes/events/{world.event.id}/applications",
            visitor_body(valid_id_number(100 + i), ring=1),
            headers={"Idempotency-Key": f"apply-{i}"},
        )
        assert r.status_code == 201, r.json
    s.expire_all()
    pending = s.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.render_card")).all()
    assert len(pending) == 3 and {o.status for o in pending} == {OutboxStatus.pending}

    redis_server.start()  # empty: whatever was queued before is gone
    try:
        assert reconcile(second)["due"] >= 3
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jobs.worker",
                "--burst",
                "--no-periodic",
                "--queues",
                "faults:certificates",
                "faults:notifications",
                "faults:default",
            ],
            env={**os.environ, **env},
            check=True,
            timeout=180,
        )
    finally:
        redis_server.stop()
        second.extensions["zhizhi"].db.dispose()
    s.expire_all()
    cards = s.scalars(select(OutboxItem).where(OutboxItem.kind == "passes.render_card")).all()
    assert {o.status for o in cards} == {OutboxStatus.done}
    creds = s.scalars(select(PassCredential)).all()
    assert len(creds) == 3 and all(c.card_png_key and c.card_pdf_key for c in creds)
