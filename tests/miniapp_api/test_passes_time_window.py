"""The holder's daily time window is enforced at the gates, online and offline, in the
event's time zone: before it ``not_yet_valid``, after it ``expired``, each with its own
detail; exits are not held to it; tokens issued before the window was signed still
verify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core import signing
from core.auth import load_actor
from models.passes import Event, PassCredential
from services import keys
from services.passes.events import key_scope
from services.passes.offline_gate import OfflineGate
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import visitor_body


def _zone_at_noon(now: datetime) -> str:
    """A fixed-offset IANA zone where it is 12:xx now, so windows around noon are far
    from midnight whenever the test runs (and far from Asia/Shanghai's clock, mostly)."""
    hours = 12 - now.hour  # in (-12, 12]
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"  # Etc/GMT-5 is UTC+05:00


@pytest.fixture
def summit(app, db):
    """An event in a zone where it is about noon, with an entry and an exit gate."""
    from services.passes import checks, events, gate

    gate.contexts.clear()
    checks.verified_tokens.clear()
    now = datetime.now(UTC)
    zone = _zone_at_noon(now)
    officer = load_actor(db, make_person(db, "officer").id)
    event = events.create_event(
        db, officer, name="午间活动", timezone=zone, starts_at=now - timedelta(days=2),
        ends_at=now + timedelta(days=3), zones=[events.ZoneSpec(1, "外围区")], policy={"min_lead_hours": 0},
        kek=app.extensions["zhizhi"].settings.signing_kek,
    )  # fmt: skip
    devices = {}
    for direction in ("in", "out"):
        device = make_person(db, "gate")
        events.add_gate(
            db, officer, event.id, name=f"{direction}门", ring=1, direction=direction,
            device_person_id=device.id, fail_closed=False,
        )  # fmt: skip
        devices[direction] = token_for(db, device)
    return event.id, ZoneInfo(zone), devices


def _pass(db, client, summit, seed: int, time_from: str, time_to: str) -> tuple[Api, dict]:
    event_id, tz, _devices = summit
    today = datetime.now(tz).date()
    body = visitor_body(valid_id_number(seed), day=today - timedelta(days=1))
    body |= {"visit_to": (today + timedelta(days=1)).isoformat(), "time_from": time_from, "time_to": time_to}
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post(f"/passes/events/{event_id}/applications", body)
    assert resp.get_json()["data"]["status"] == "approved", resp.get_json()
    return api, resp.get_json()["data"]["passes"][0]


def test_an_entry_before_the_days_window_is_not_yet_valid(db, client, summit):
    api, issued = _pass(db, client, summit, 131, "14:00", "18:00")
    answer = scan(api, summit[2]["in"], issued["token"])
    assert (answer["result"], answer["reason"]) == ("error", "not_yet_valid")
    assert answer["detail"] == "今日通行时段尚未开始，请在申请的时段内入场"
    assert scan(api, summit[2]["out"], issued["token"], direction="out")["result"] == "ok"  # may always leave


def test_an_entry_after_the_days_window_is_expired(db, client, summit):
    api, issued = _pass(db, client, summit, 132, "08:00", "11:00")
    answer = scan(api, summit[2]["in"], issued["token"])
    assert (answer["reason"], answer["detail"]) == ("expired", "今日通行时段已结束，请在申请的时段内入场")


def test_an_entry_inside_the_window_passes(db, client, summit):
    api, issued = _pass(db, client, summit, 133, "11:00", "14:00")
    assert scan(api, summit[2]["in"], issued["token"])["result"] == "ok"


def test_the_offline_verifier_enforces_the_window_from_the_bundle(db, client, summit):
    _api, early = _pass(db, client, summit, 134, "14:00", "18:00")
    _api, now_ok = _pass(db, client, summit, 135, "11:00", "14:00")
    bundle = Api(client, summit[2]["in"]).get("/passes/gate/bundle").get_json()["data"]
    assert bundle["event"]["timezone"] == str(summit[1])
    gate, now = OfflineGate(bundle), datetime.now(UTC)
    assert gate.verify(early["token"], now=now)[1] == "not_yet_valid"
    assert gate.verify(early["token"], now=now, direction="out")[1] == ""
    assert gate.verify(now_ok["token"], now=now)[1] == ""
    assert gate.scan(early["token"], nonce="early-0001", direction="in", now=now)["reason"] == "not_yet_valid"


def test_a_token_issued_before_windows_were_signed_still_verifies(app, db, client, summit):
    api, issued = _pass(db, client, summit, 136, "14:00", "18:00")
    credential = db.get(PassCredential, issued["id"])
    assert signing.parse_token(credential.token)[0].version == 2
    kek = app.extensions["zhizhi"].settings.signing_kek
    claims = signing.parse_token(credential.token)[0]
    old = signing.encode_token(
        kind=claims.kind, object_id=claims.object_id, scope_id=claims.scope_id, zone=claims.zone,
        not_before=claims.not_before, not_after=claims.not_after, holder_tag=claims.holder_tag,
        ring=keys.signing_ring(db, key_scope(summit[0]), kek),
    )  # fmt: skip
    assert signing.parse_token(old)[0].version == 1 and len(old) < len(credential.token)
    assert scan(api, summit[2]["in"], old)["result"] == "ok"  # no window in the token: not enforced


def test_a_whole_day_window_keeps_the_short_version_1_token(db, client, summit):
    _api, issued = _pass(db, client, summit, 137, "00:00", "24:00")
    assert signing.parse_token(issued["token"])[0].version == 1
    event = db.scalars(select(Event).where(Event.id == summit[0])).one()
    assert event.timezone == str(summit[1])
