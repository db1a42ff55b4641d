"""An online-only gate gets the event's gate key for its ID-card reader through the
online path, with the bundle's authorization, and its holder tags match at the gate."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from core import signing
from services.passes import events
from tests.helpers import Api, make_person, token_for, valid_id_number
from tests.services.passes.builders import visitor_body


def _online_only_gate(db, world) -> str:
    device = make_person(db, "gate", name="在线闸机")
    events.add_gate(
        db, world.officer, world.event.id, name="在线东门", ring=1, direction="in",
        offline_capable=False, device_person_id=device.id,
    )  # fmt: skip
    return token_for(db, device)


def test_an_online_only_gate_reads_the_gate_key_and_its_reader_tags_match(db, client, world):
    device = Api(client, _online_only_gate(db, world))
    assert device.get("/passes/gate/bundle").get_json()["error"]["code"] == "gate_not_offline_capable"
    resp = device.get("/passes/gate/key")
    assert resp.status_code == 200, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    material = resp.get_json()["data"]
    assert material["event_id"] == world.event.id
    offline = Api(client, world.device_tokens["outer_in"]).get("/passes/gate/bundle").get_json()["data"]
    assert material["gate_key"] == offline["gate_key"]  # the same key the bundle carries

    citizen = Api(client, token_for(db, make_person(db, "citizen")))
    applied = citizen.post(
        f"/passes/events/{world.event.id}/applications", visitor_body(valid_id_number(121))
    )
    token = applied.get_json()["data"]["passes"][0]["token"]
    key = base64.b64decode(material["gate_key"])

    def scan(id_number: str) -> dict:
        body = {"qr": token, "nonce": uuid.uuid4().hex, "scanned_at": datetime.now(UTC).isoformat()}
        body |= {"direction": "in", "holder_hash": signing.holder_tag(key, id_number).hex()}
        return device.post("/passes/gate/scan", body).get_json()["data"]

    assert scan(valid_id_number(122))["reason"] == "holder_mismatch"
    assert scan(valid_id_number(121).lower())["result"] == "ok"


def test_only_a_gate_device_bound_to_a_gate_gets_the_key(db, client, world):
    unbound = Api(client, token_for(db, make_person(db, "gate")))
    resp = unbound.get("/passes/gate/key")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "gate_not_bound"
    for role in ("officer", "citizen"):
        assert Api(client, token_for(db, make_person(db, role))).get("/passes/gate/key").status_code == 403
    assert Api(client).get("/passes/gate/key").status_code == 401
