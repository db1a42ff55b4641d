"""Officers act only on events their jurisdiction covers (services.passes.scope).

The walk below calls every passes route an officer may call, with the ids of an event
of another district (its zones, gates, keys, applications, passes, alerts, watch and
trust entries), and expects 403 ``out_of_jurisdiction`` and nothing written; a new
officer route without the check fails it. The same walk as the event's own officers
(the district above the event's town, and the town itself) gets through every time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import models
from core.api import iter_endpoints
from core.auth import load_actor
from core.files import LocalFileStore
from models.identity import OrgLevel
from models.passes import ApplicationStatus, Event
from models.platform import SigningKey, SigningKeyStatus
from services.passes import applications, events, issuance, lists
from tests.helpers import Api, make_org, make_person, token_for, valid_id_number

STARTS = "2026-12-01T08:00:00+08:00"
ENDS = "2026-12-02T20:00:00+08:00"

#: Routes an officer may call that are not an officer's power over an event: anyone
#: applies for a pass and reads an event's public page; one's own applications.
NOT_OFFICER_POWERS = {
    "POST /api/v1/passes/events/<int:event_id>/applications",
    "POST /api/v1/passes/events/<int:event_id>/group-applications",
    "GET /api/v1/passes/events/<int:event_id>",
    "GET /api/v1/passes/applications",
}
#: List routes scoped by filtering (checked in test_lists_show_only_the_jurisdictions_events).
FILTERED_LISTS = {"GET /api/v1/passes/events"}


def _bodies(w) -> dict[str, dict]:
    """A valid body per route with one (so the refusal is the jurisdiction's, not a 422)."""
    return {
        "POST /api/v1/passes/events": {
            "name": "越权活动", "starts_at": STARTS, "ends_at": ENDS, "org_unit_id": w.town.id,
            "zones": [{"ring": 1, "name": "外围区"}],
        },
        "POST /api/v1/passes/events/<int:event_id>/gates": {"name": "越权闸机", "ring": 1, "direction": "in"},
        "POST /api/v1/passes/applications/<int:application_id>/decision": {"approve": True, "note": "同意"},
        "POST /api/v1/passes/passes/<int:pass_id>/revoke": {"reason": "作废"},
        "POST /api/v1/passes/passes/<int:pass_id>/reissue": {"ring": 2},
        "POST /api/v1/passes/watch-entries": {
            "event_id": w.event.id, "reason": "重点人员", "severity": "alert",
            "id_number": valid_id_number(9),
        },
        "POST /api/v1/passes/alerts/<int:alert_id>/resolve": {"cleared": True, "note": "已核实"},
        "PATCH /api/v1/passes/events/<int:event_id>": {"name": "改名"},
        "PATCH /api/v1/passes/events/<int:event_id>/zones/<int:ring>": {"name": "改名"},
        "PATCH /api/v1/passes/gates/<int:gate_id>": {"name": "改名"},
        "PATCH /api/v1/passes/watch-entries/<int:entry_id>": {"reason": "改"},
        "PATCH /api/v1/passes/trust-entries/<int:entry_id>": {"ring": 2},
    }  # fmt: skip


QUERIES = {"GET /api/v1/passes/watch-entries": lambda w: {"event_id": w.event.id}}


class World:
    """An event of 乌镇镇 (under 桐乡市) with a gate, a rotated key, a pass, an
    application in manual review, an alert, a trust entry and an event watch entry."""

    def __init__(self, app, db) -> None:
        kek = app.extensions["zhizhi"].settings.signing_kek
        self.city = make_org(db, "桐乡市")
        self.town = make_org(db, "乌镇镇", OrgLevel.street, self.city)
        self.sibling = make_org(db, "梧桐街道", OrgLevel.street, self.city)
        self.other = make_org(db, "南湖区")
        self.officers = {
            "city": make_person(db, "officer", org=self.city),
            "town": make_person(db, "officer", org=self.town),
            "sibling": make_person(db, "officer", org=self.sibling),
            "other": make_person(db, "officer", org=self.other),
            "everywhere": make_person(db, "officer"),
        }
        officer = load_actor(db, self.officers["town"].id)
        now = datetime.now(UTC)
        self.event = events.create_event(
            db, officer, name="乌镇峰会", starts_at=now - timedelta(hours=2), ends_at=now + timedelta(days=3),
            zones=[events.ZoneSpec(1, "外围区"), events.ZoneSpec(2, "管控区")], kek=kek,
            org_unit_id=self.town.id, policy={"min_lead_hours": 0},
        )  # fmt: skip
        self.device = make_person(db, "gate")
        self.gate = events.add_gate(
            db, officer, self.event.id, name="东门", ring=1, direction="in", device_person_id=self.device.id
        )
        self.old_kid = db.scalar(
            select(SigningKey.kid).where(
                SigningKey.scope == events.key_scope(self.event.id),
                SigningKey.status == SigningKeyStatus.active,
            )
        )
        events.rotate_key(db, officer, self.event.id, kek)
        citizen = load_actor(db, make_person(db, "citizen").id)
        today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()

        def apply(seed: int, name: str):
            data = applications.ApplicationInput(
                person=applications.PersonInput(name, valid_id_number(seed), "13812345678"),
                purpose="参会", host_unit="组委会", visit_from=today, visit_to=today, ring=1,
            )  # fmt: skip
            return applications.create(db, citizen, self.event.id, data, kek=kek)

        approved = apply(1, "张三")
        assert approved.status == ApplicationStatus.approved
        credential = issuance.active_pass(db, approved.id)
        store = LocalFileStore(app.extensions["zhizhi"].settings.file_store_dir)
        credential.card_png_key = store.put(b"png", "image/png", "png").key  # as the render job would
        credential.card_pdf_key = store.put(b"pdf", "application/pdf", "pdf").key
        self.pass_id = credential.id
        born = valid_id_number(2)[6:14]
        self.watch = lists.add_watch_entry(
            db, officer, event_id=self.event.id, reason="同名关注", severity="alert", name="李四",
            birth_date=datetime.strptime(born, "%Y%m%d").date(),
        )  # fmt: skip
        self.review = apply(2, "李四")
        assert self.review.status == ApplicationStatus.manual_review
        self.alert = lists.raise_alert(
            db, event_id=self.event.id, kind="watchlist_gate", severity="alert", message="测试预警",
            subject_index=approved.subject_index, pass_id=self.pass_id,
        )  # fmt: skip
        self.trust = lists.trust_subject(
            db, self.event.id, approved.subject_index, 1, source="officer_cleared",
            actor_id=officer.person_id, now=now,
        )  # fmt: skip
        self.global_watch = lists.add_watch_entry(
            db, officer, event_id=None, reason="全局关注", severity="alert", id_number=valid_id_number(3)
        )
        db.flush()
        self.tokens = {k: token_for(db, p) for k, p in self.officers.items()}

    def params(self, rule: str) -> dict[str, object]:
        entry = self.watch.id if "/watch-entries/" in rule else self.trust.id
        return {
            "event_id": self.event.id, "gate_id": self.gate.id, "ring": 1, "kid": self.old_kid,
            "application_id": self.review.id, "pass_id": self.pass_id, "alert_id": self.alert.id,
            "entry_id": entry,
        }  # fmt: skip


@pytest.fixture
def world(app, db):
    from services.passes import checks, gate

    gate.contexts.clear()
    checks.verified_tokens.clear()
    return World(app, db)


def officer_routes(app) -> list:
    """Every passes route an officer passes the role check of, but the lists that are
    filtered and those that are no officer's power."""
    out = []
    for ep in iter_endpoints(app):
        key = f"{ep.method} {ep.rule}"
        officer = ep.roles == "any" or (isinstance(ep.roles, tuple) and "officer" in ep.roles)
        if "/passes/" in ep.rule and officer and key not in NOT_OFFICER_POWERS | FILTERED_LISTS:
            out.append(ep)
    return out


def _call(client, world, ep, token: str):
    key = f"{ep.method} {ep.rule}"
    params = world.params(ep.rule)
    names = re.findall(r"<(?:\w+:)?(\w+)>", ep.rule)
    unknown = [n for n in names if n not in params]
    assert not unknown, f"{key}: give the walk an id for {unknown} (World.params)"
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(params[m.group(1)]), ep.rule)
    bodies = _bodies(world)
    assert ep.body is None or key in bodies, f"{key}: give the walk a valid body (_bodies)"
    query = QUERIES[key](world) if key in QUERIES else None
    return client.open(
        url, method=ep.method, json=bodies.get(key), query_string=query,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def _state(db) -> dict:
    """Every row of every table but the tokens (a request may touch its token)."""
    db.expire_all()
    out = {}
    for table in models.Base.metadata.sorted_tables:
        if table.name in ("auth_tokens",):
            continue
        out[table.name] = sorted(map(tuple, db.execute(select(table)).all()), key=repr)
    return out


@pytest.mark.parametrize("who", ["other", "sibling"])
def test_cross_tenant_every_officer_route_refuses_another_districts_event(app, db, client, world, who):
    routes = officer_routes(app)
    assert len(routes) >= 28, [f"{ep.method} {ep.rule}" for ep in routes]
    before = _state(db)
    let_through = []
    for ep in routes:
        resp = _call(client, world, ep, world.tokens[who])
        error = resp.get_json().get("error") or {}
        if resp.status_code != 403 or error.get("code") != "out_of_jurisdiction":
            let_through.append((ep.method, ep.rule, resp.status_code, error.get("code")))
        else:
            assert "管辖范围" in error["message"]
    assert not let_through, let_through
    assert _state(db) == before  # nothing written


@pytest.mark.parametrize("who", ["city", "town", "everywhere"])
def test_the_events_own_officers_get_through_every_route(app, db, client, world, who):
    for ep in officer_routes(app):
        savepoint = db.begin_nested()  # each call starts from the same world
        db.connection()  # the SAVEPOINT is emitted now, before the request's own
        resp = _call(client, world, ep, world.tokens[who])
        assert resp.status_code < 400, (ep.method, ep.rule, resp.status_code, resp.get_json())
        savepoint.rollback()


def test_lists_show_only_the_jurisdictions_events(app, db, client, world):
    mine = Api(client, world.tokens["city"]).post(
        "/passes/events", {"name": "本区活动", "starts_at": STARTS, "ends_at": ENDS,
                           "zones": [{"ring": 1, "name": "外围区"}]},
    ).get_json()["data"]  # fmt: skip
    other = Api(client, world.tokens["other"])
    theirs = other.post(
        "/passes/events", {"name": "南湖活动", "starts_at": STARTS, "ends_at": ENDS,
                           "zones": [{"ring": 1, "name": "外围区"}]},
    ).get_json()["data"]  # fmt: skip
    unitless = db.scalar(select(Event.id).where(Event.org_unit_id.is_(None)))
    listed = {
        who: {e["id"] for e in Api(client, token).get("/passes/events").get_json()["data"]}
        for who, token in world.tokens.items()
    }
    assert {world.event.id, mine["id"]} <= listed["city"] and theirs["id"] not in listed["city"]
    assert world.event.id in listed["town"] and mine["id"] not in listed["town"]
    assert listed["sibling"].isdisjoint({world.event.id, mine["id"], theirs["id"]})
    assert listed["other"] == {theirs["id"]} and unitless is None
    assert {world.event.id, mine["id"], theirs["id"]} <= listed["everywhere"]

    their_watch = other.post(
        "/passes/watch-entries",
        {"event_id": theirs["id"], "reason": "南湖关注", "severity": "reject", "plate": "浙F12345"},
    ).get_json()["data"]
    watch = {
        who: {e["id"] for e in Api(client, token).get("/passes/watch-entries").get_json()["data"]["items"]}
        for who, token in world.tokens.items()
    }
    # Global entries belong to no district: every officer sees (and manages) them.
    assert watch["city"] == {world.watch.id, world.global_watch.id}
    assert watch["other"] == {their_watch["id"], world.global_watch.id}
    assert watch["sibling"] == {world.global_watch.id}
    assert watch["everywhere"] >= {world.watch.id, world.global_watch.id, their_watch["id"]}


def test_any_officer_manages_a_global_watch_entry(db, client, world):
    other = Api(client, world.tokens["other"])
    path = f"/api/v1/passes/watch-entries/{world.global_watch.id}"
    auth = {"Authorization": f"Bearer {world.tokens['other']}"}
    resp = client.patch(path, json={"reason": "南湖修改"}, headers=auth)
    assert resp.status_code == 200 and resp.get_json()["data"]["reason"] == "南湖修改"
    assert other.post(f"/passes/watch-entries/{world.global_watch.id}/deactivate").status_code == 200


def test_an_event_without_a_unit_is_for_officers_without_one(app, db, client, world):
    created = Api(client, world.tokens["everywhere"]).post(
        "/passes/events", {"name": "无辖区活动", "starts_at": STARTS, "ends_at": ENDS,
                           "zones": [{"ring": 1, "name": "外围区"}]},
    ).get_json()["data"]  # fmt: skip
    assert created["org_unit_id"] is None
    refused = Api(client, world.tokens["city"]).get(f"/passes/events/{created['id']}/zones")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "out_of_jurisdiction"
    ok = Api(client, world.tokens["everywhere"]).get(f"/passes/events/{created['id']}/zones")
    assert ok.status_code == 200


def test_a_gate_device_reads_only_its_own_events_revocations(app, db, client, world):
    device = Api(client, token_for(db, world.device))
    assert device.get(f"/passes/events/{world.event.id}/revocations").status_code == 200
    other = events.create_event(
        db, load_actor(db, world.officers["other"].id), name="南湖活动",
        starts_at=datetime.now(UTC), ends_at=datetime.now(UTC) + timedelta(days=1),
        zones=[events.ZoneSpec(1, "外围区")], kek=app.extensions["zhizhi"].settings.signing_kek,
    )  # fmt: skip
    refused = device.get(f"/passes/events/{other.id}/revocations")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "gate_not_in_event"
