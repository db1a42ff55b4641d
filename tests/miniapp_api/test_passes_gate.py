"""Gate check over HTTP: every bad token has its reason code and logs no passage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import signing
from jobs.passes import flush_passages
from models.passes import Passage, ScanRefusal
from services import keys
from services.passes import events, hotlayout, hotstate
from services.passes.events import key_scope
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.miniapp_api.test_passes_end_to_end import scan
from tests.services.passes.builders import visitor_body


@pytest.fixture
def approved(app, db, client, world):
    citizen = make_person(db, "citizen")
    api = Api(client, token_for(db, citizen))
    resp = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(7), ring=1))
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()["data"]
    assert data["status"] == "approved"
    return api, data["passes"][0]


def _token(
    app, db, world, *, not_before: int, not_after: int, ring=None, zone: int = 1, event_id=None
) -> str:
    ring = ring or keys.signing_ring(
        db, key_scope(world.event.id), app.extensions["zhizhi"].settings.signing_kek
    )
    return signing.encode_token(
        kind=signing.KIND_PASS,
        object_id=999_999,
        scope_id=event_id or world.event.id,
        zone=zone,
        not_before=not_before,
        not_after=not_after,
        ring=ring,
    )


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _forged(app, db, world) -> str:
    real = keys.signing_ring(db, key_scope(world.event.id), app.extensions["zhizhi"].settings.signing_kek)
    impostor = signing.KeyRing([signing.generate_key(kid=real.active.kid)])
    return _token(app, db, world, not_before=_now() - 60, not_after=_now() + 3600, ring=impostor)


def _other_event(app, db, world) -> str:
    other = events.create_event(
        db,
        world.officer,
        name="另一活动",
        starts_at=datetime.now(UTC),
        ends_at=datetime.now(UTC) + timedelta(days=1),
        zones=[events.ZoneSpec(1, "外围区")],
        kek=app.extensions["zhizhi"].settings.signing_kek,
    )
    ring = keys.signing_ring(db, key_scope(other.id), app.extensions["zhizhi"].settings.signing_kek)
    return _token(
        app, db, world, not_before=_now() - 60, not_after=_now() + 3600, ring=ring, event_id=other.id
    )


CASES = {
    "forged_signature": (lambda app, db, w, qr: _forged(app, db, w), "invalid"),
    "truncated": (lambda app, db, w, qr: qr[:-6], "invalid"),
    "lower_cased": (lambda app, db, w, qr: qr.lower(), "invalid"),
    "other_event": (lambda app, db, w, qr: _other_event(app, db, w), "invalid"),
    "unknown_kid": (
        lambda app, db, w, qr: _token(
            app, db, w, not_before=_now() - 60, not_after=_now() + 60,
            ring=signing.KeyRing([signing.generate_key(kid="nokey01")]),
        ),
        "unknown_key",
    ),
    "expired": (
        lambda app, db, w, qr: _token(app, db, w, not_before=_now() - 7200, not_after=_now() - 3600),
        "expired",
    ),
    "not_yet_valid": (
        lambda app, db, w, qr: _token(app, db, w, not_before=_now() + 3600, not_after=_now() + 7200),
        "not_yet_valid",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_token_gets_its_reason_and_no_passage(app, db, client, world, approved, case):
    api, issued = approved
    make, reason = CASES[case]
    answer = scan(api, world.device_tokens["outer_in"], make(app, db, world, issued["token"]))
    assert answer["result"] == "error"
    assert answer["reason"] == reason
    assert answer["message"]
    flush_passages(app)
    assert db.scalar(select(func.count()).select_from(Passage)) == 0
    assert db.scalar(select(func.count()).select_from(ScanRefusal)) == 1
    if case == "other_event":
        assert answer["detail"] == "二维码不属于本活动"


def test_same_nonce_twice_returns_first_answer_and_logs_one_passage(app, db, world, approved):
    api, issued = approved
    nonce = uuid.uuid4().hex
    first = scan(api, world.device_tokens["outer_in"], issued["token"], nonce)
    second = scan(api, world.device_tokens["outer_in"], issued["token"], nonce)
    assert first["result"] == second["result"] == "ok"
    assert second["replayed"] is True
    flush_passages(app)
    flush_passages(app)
    assert db.scalar(select(func.count()).select_from(Passage)) == 1


def test_exit_then_reentry_is_allowed(app, db, world, approved):
    api, issued = approved
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"
    assert scan(api, t["outer_in2"], issued["token"])["reason"] == "already_inside"
    assert scan(api, t["outer_out"], issued["token"], direction="out")["result"] == "ok"
    assert scan(api, t["outer_in2"], issued["token"])["result"] == "ok"


def test_holder_cross_check_with_id_card_reader(app, db, world, approved):
    api, issued = approved
    from services.passes.events import gate_key

    key = gate_key(world.event, app.extensions["zhizhi"].settings.signing_kek)
    wrong = signing.holder_tag(key, valid_id_number(8)).hex()
    right = signing.holder_tag(key, valid_id_number(7)).hex()
    body = {"qr": issued["token"], "nonce": uuid.uuid4().hex, "scanned_at": datetime.now(UTC).isoformat()}
    token = world.device_tokens["outer_in"]
    bad = api.post("/passes/gate/scan", {**body, "direction": "in", "holder_hash": wrong}, token=token)
    assert bad.get_json()["data"]["reason"] == "holder_mismatch"
    assert bad.get_json()["data"]["require_attention"] is True
    body["nonce"] = uuid.uuid4().hex
    good = api.post("/passes/gate/scan", {**body, "direction": "in", "holder_hash": right}, token=token)
    assert good.get_json()["data"]["result"] == "ok"
    assert good.get_json()["data"]["holder"] == "人员 张*"


def test_scan_needs_a_gate_device_account(app, db, client, world, approved):
    api, issued = approved
    body = {"qr": issued["token"], "nonce": uuid.uuid4().hex, "scanned_at": datetime.now(UTC).isoformat()}
    resp = api.post("/passes/gate/scan", {**body, "direction": "in"})
    assert resp.status_code == 403


def test_malformed_scan_request_is_a_validation_error(app, db, world):
    api = Api(app.test_client(), world.device_tokens["outer_in"])
    resp = api.post(
        "/passes/gate/scan", {"qr": "ZZ1:X", "nonce": "short", "scanned_at": "yesterday", "direction": "up"}
    )
    assert resp.status_code == 422
    assert set(resp.get_json()["error"]["fields"]) >= {"nonce", "scanned_at", "direction"}


def test_rotated_key_still_verifies_old_passes_and_new_ones(app, db, world, approved):
    api, issued = approved
    kek = app.extensions["zhizhi"].settings.signing_kek
    assert scan(api, world.device_tokens["outer_in"], issued["token"])["result"] == "ok"
    events.rotate_key(db, world.officer, world.event.id, kek)
    ring = keys.signing_ring(db, key_scope(world.event.id), kek)
    fresh = _token(app, db, world, not_before=_now() - 60, not_after=_now() + 3600, ring=ring)
    from services.passes import gate

    gate.contexts.clear()
    assert scan(api, world.device_tokens["outer_out"], issued["token"], direction="out")["result"] == "ok"
    assert scan(api, world.device_tokens["outer_in2"], fresh)["reason"] != "unknown_key"


def test_clean_passages_make_the_subject_trusted(app, db, world, approved):
    from models.passes import TrustEntry

    api, issued = approved
    for _ in range(3):
        assert scan(api, world.device_tokens["outer_in"], issued["token"])["result"] == "ok"
        assert scan(api, world.device_tokens["outer_out"], issued["token"], direction="out")["result"] == "ok"
    flush_passages(app)
    trust = db.scalars(select(TrustEntry)).one()
    assert trust.source == "clean_passages" and trust.ring == 1
    flush_passages(app)
    assert db.scalar(select(func.count()).select_from(TrustEntry)) == 1


def test_any_qr_text_gets_a_reason_code_never_a_server_error(app, db, world):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    api = Api(app.test_client(), world.device_tokens["outer_in"])
    known = {"invalid", "unknown_key", "expired", "not_yet_valid", "wrong_zone"}

    @given(
        qr=st.one_of(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=200).map("ZZ1:".__add__))
    )
    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(qr):
        if not qr.strip():
            return
        answer = api.post("/passes/gate/scan", {"qr": qr, "nonce": uuid.uuid4().hex,
                          "scanned_at": datetime.now(UTC).isoformat(), "direction": "in"})  # fmt: skip
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["data"]["reason"] in known

    check()


def test_pass_signed_with_a_revoked_key_is_unknown_key(app, db, world, approved):
    from services.passes import gate

    api, issued = approved
    kid = issued["token"] and keys.verify_ring(db, key_scope(world.event.id)).records[0].kid
    keys.revoke(db, kid)
    gate.contexts.clear()  # devices reload their key set within CONTEXT_TTL seconds
    assert scan(api, world.device_tokens["outer_in"], issued["token"])["reason"] == "unknown_key"


def test_a_rolled_back_revocation_never_reaches_the_gates(app, db, world, approved):
    from models.passes import PassCredential
    from services.passes import issuance

    api, kept = approved
    other = api.post(f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(17)))
    undone = other.get_json()["data"]["passes"][0]
    gate = world.device_tokens["outer_in"]
    assert scan(api, gate, undone["token"])["result"] == "ok"  # gate state synced from the database
    issuance.revoke(db, db.get(PassCredential, kept["id"]), reason="lost")
    nested = db.begin_nested()
    issuance.revoke(db, db.get(PassCredential, undone["id"]), reason="mistake")
    nested.rollback()
    db.commit()
    assert scan(api, gate, kept["token"])["reason"] == "revoked"
    assert scan(api, world.device_tokens["outer_out"], undone["token"], direction="out")["result"] == "ok"


def test_a_watch_entry_added_while_the_gates_run_refuses_the_pass_at_its_next_scan(app, db, world, approved):
    api, issued = approved
    t = world.device_tokens
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"  # the gates' flags are loaded now
    officer = Api(api.client, world.officer_token)
    entry = {"event_id": world.event.id, "reason": "在逃", "severity": "reject"}
    entry["id_number"] = valid_id_number(7)
    assert officer.post("/passes/watch-entries", entry).status_code == 201
    assert scan(api, t["outer_out"], issued["token"], direction="out")["reason"] == "watchlist"


# --- a deploy of the per-pass gate layout while an event runs ---------------------


def _as_layout_1(redis, event_id: int) -> None:
    """Rewrite the event's gate state the way the layout-1 code kept it."""
    state, seen, info = {}, {}, {}
    for name in redis.scan_iter(hotstate.pass_key(event_id, "*")):
        pid = name.decode().rpartition(":")[2]
        for field, value in redis.hgetall(name).items():
            field, value = field.decode(), value.decode()
            if field == "i":
                info[pid] = value
            else:
                state[f"{pid}:{field}"] = "in" if value[0] == "I" else "out"
                seen[f"{pid}:{field}"] = value[1:]
        redis.delete(name)
    for name, mapping in (("state", state), ("seen", seen), ("info", info)):
        if mapping:
            redis.hset(hotstate.key(event_id, name), mapping=mapping)
    flags = {m.decode() for m in redis.smembers(hotstate.key(event_id, "flags"))}
    redis.delete(hotstate.key(event_id, "flags"))
    for name, prefix in (("rev", "r"), ("watch", "w")):
        members = [m[1:] for m in flags if m[:1] == prefix]
        redis.sadd(hotstate.key(event_id, name), "-", *members)


def test_who_is_inside_survives_a_deploy_of_the_new_layout(app, db, world, approved):
    api, issued = approved
    t, redis = world.device_tokens, app.extensions["zhizhi"].redis
    first = scan(api, t["outer_in"], issued["token"])
    assert first["result"] == "ok" and first["holder"]
    _as_layout_1(redis, world.event.id)
    assert redis.hget(hotstate.key(world.event.id, "state"), f"{issued['id']}:1") == b"in"

    again = scan(api, t["outer_in2"], issued["token"])  # asks for the sync, which moves the state
    assert again["reason"] == "already_inside"
    assert again["holder"] == first["holder"]
    old = hotlayout.OLD_KEYS + hotlayout.OLD_SETS
    assert not any(redis.exists(hotstate.key(world.event.id, n)) for n in old)
    assert scan(api, t["outer_out"], issued["token"], direction="out")["result"] == "ok"
    assert int(redis.hget(hotstate.key(world.event.id, "inside"), "1")) == 0
    assert scan(api, t["outer_in"], issued["token"])["result"] == "ok"


def test_stream_entries_written_before_the_deploy_are_flushed_with_the_new_ones(app, db, world, approved):
    api, issued = approved
    redis = app.extensions["zhizhi"].redis
    stream = hotstate.key(world.event.id, "stream")
    gate_id = world.gates["outer_in"].id
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    old = {"p": issued["id"], "g": gate_id, "r": 1, "d": "in", "t": now_ms, "o": "0", "k": ""}
    redis.xadd(stream, {"n": "old-format-ok", **old, "x": ""})
    redis.xadd(stream, {"n": "old-format-refused", **old, "x": "already_inside"})
    assert scan(api, world.device_tokens["outer_in"], issued["token"], "new-format-01")["result"] == "ok"
    assert scan(api, world.device_tokens["outer_in2"], issued["token"], "new-format-02")["result"] == "error"
    assert flush_passages(app) == 4
    passages = db.execute(select(Passage.nonce, Passage.pass_id, Passage.gate_id, Passage.ring)).all()
    refusals = dict(db.execute(select(ScanRefusal.nonce, ScanRefusal.reason)).all())
    assert sorted(passages) == [
        ("new-format-01", issued["id"], gate_id, 1),
        ("old-format-ok", issued["id"], gate_id, 1),
    ]
    assert refusals == {"old-format-refused": "already_inside", "new-format-02": "already_inside"}
    assert redis.xlen(stream) == 0
