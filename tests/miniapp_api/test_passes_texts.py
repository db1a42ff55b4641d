"""Texts people read: the lead time the event actually asks for, the ring's name in the
"pass issued" push."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from models.jobs import Notification
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import make_world, visitor_body


def test_too_late_names_the_events_own_lead_time(app, db, client):
    world = make_world(db, app, datetime.now(UTC), policy={"min_lead_hours": 36})
    api = Api(client, token_for(db, make_person(db, "citizen")))
    data = api.post(
        f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(5))
    ).get_json()["data"]
    assert data["status"] == "rejected"
    assert data["result_message"] == "已超过办理时限（需提前至少 36 小时）"


def test_the_issued_push_names_the_ring(app, db, client, run_jobs):
    world = make_world(db, app, datetime.now(UTC))
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(6), ring=2))
    assert resp.get_json()["data"]["status"] == "approved"
    run_jobs()
    note = db.scalars(select(Notification).where(Notification.kind == "passes.issued")).one()
    assert "管控区" in note.content["text"] and "2区" not in note.content["text"]
