"""Alerts are pushed only to officers whose jurisdiction (role grant's org unit) covers
the event; an event takes its creator's jurisdiction unless given one inside it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core.auth import load_actor
from jobs.passes import alert_officers
from models.identity import OrgLevel
from models.jobs import Notification
from models.platform import OutboxItem
from services.passes import events, lists
from tests.helpers import Api, make_org, make_person, token_for


def _alert_for(db, event_id: int) -> OutboxItem:
    alert = lists.raise_alert(
        db, event_id=event_id, kind="watchlist_gate", severity="reject", message="测试预警"
    )
    return db.scalars(select(OutboxItem).where(OutboxItem.dedup_key == f"pass-alert:{alert.id}")).one()


def test_alerts_are_pushed_only_to_officers_whose_jurisdiction_covers_the_event(app, db):
    tongxiang = make_org(db, "桐乡市")
    wuzhen = make_org(db, "乌镇镇", OrgLevel.street, tongxiang)
    nanhu = make_org(db, "南湖区")
    city, town = make_person(db, "officer", org=tongxiang), make_person(db, "officer", org=wuzhen)
    elsewhere, everywhere = make_person(db, "officer", org=nanhu), make_person(db, "officer")
    retired = make_person(db, "officer", org=tongxiang)
    retired.active = False
    make_person(db, "regulator", org=wuzhen)
    event = events.create_event(
        db, load_actor(db, city.id), name="乌镇峰会", starts_at=datetime.now(UTC),
        ends_at=datetime.now(UTC).replace(year=2100), zones=[events.ZoneSpec(1, "外围区")],
        kek=app.extensions["zhizhi"].settings.signing_kek, org_unit_id=wuzhen.id,
    )  # fmt: skip
    result = alert_officers(db, _alert_for(db, event.id))
    assert sorted(result["to_persons"]) == sorted([city.id, town.id, everywhere.id])
    sent = set(db.scalars(select(Notification.person_id).where(Notification.kind == "passes.alert")))
    assert sent == {city.id, town.id, everywhere.id} and elsewhere.id not in sent


def test_an_event_takes_its_creators_jurisdiction_and_stays_inside_it(app, db, client):
    tongxiang, nanhu = make_org(db, "桐乡市"), make_org(db, "南湖区")
    officer = make_person(db, "officer", org=tongxiang)
    api = Api(client, token_for(db, officer))
    body = {"name": "活动", "starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-02T20:00:00+08:00",
            "zones": [{"ring": 1, "name": "外围区"}]}  # fmt: skip
    created = api.post("/passes/events", body)
    assert created.status_code == 201 and created.get_json()["data"]["org_unit_id"] == tongxiang.id
    refused = api.post("/passes/events", body | {"org_unit_id": nanhu.id})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "out_of_jurisdiction"
    missing = api.post("/passes/events", body | {"org_unit_id": 987654})
    assert missing.status_code == 422 and "org_unit_id" in missing.get_json()["error"]["fields"]
    other = make_person(db, "officer", org=nanhu)
    result = alert_officers(db, _alert_for(db, created.get_json()["data"]["id"]))
    assert result["to_persons"] == [officer.id] and other.id not in result["to_persons"]
