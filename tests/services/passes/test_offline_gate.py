"""The offline verifier needs only its bundle: no database, no Redis, no app."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from core import signing
from services.passes.offline_gate import OfflineGate

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
EVENT = 7


def _bundle(
    keyring: signing.KeyRing, gate_key: bytes, *, ring: int = 1, fail_closed: bool = False, revoked=()
) -> dict:
    # Exactly the JSON shape services.passes.offline.build_bundle produces.
    return json.loads(
        json.dumps(
            {
                "format": 1,
                "event": {
                    "id": EVENT,
                    "name": "峰会",
                    "max_ring": 3,
                    "zones": [{"ring": r, "name": str(r)} for r in (1, 2, 3)],
                },
                "gate": {
                    "id": 1,
                    "name": "东门",
                    "ring": ring,
                    "direction": "in",
                    "vehicle": False,
                    "fail_closed": fail_closed,
                },
                "gates": [],
                "keys": signing.public_key_set(keyring.records),
                "gate_key": base64.b64encode(gate_key).decode(),
                "revocations": {
                    "event_id": EVENT,
                    "version": len(revoked),
                    "since": 0,
                    "pass_ids": list(revoked),
                },
                "watched_pass_ids": [],
            }
        )
    )


@pytest.fixture
def setup():
    keyring = signing.KeyRing([signing.generate_key()])
    gate_key = secrets.token_bytes(32)
    id_number = "11010519491231002X"

    def token(pass_id: int = 42, zone: int = 1, event: int = EVENT, hours: int = 8) -> str:
        start = int((NOW - timedelta(hours=1)).timestamp())
        return signing.encode_token(
            kind=signing.KIND_PASS, object_id=pass_id, scope_id=event, zone=zone, not_before=start,
            not_after=start + hours * 3600, ring=keyring, holder_tag=signing.holder_tag(gate_key, id_number),
        )  # fmt: skip

    return keyring, gate_key, token, id_number


def test_offline_gate_verifies_with_only_the_bundle(setup):
    keyring, gate_key, token, id_number = setup
    gate = OfflineGate(_bundle(keyring, gate_key))
    tag = signing.holder_tag(gate_key, id_number).hex()
    assert gate.scan(token(), nonce="n-000001", direction="in", now=NOW, holder_hash=tag)["result"] == "ok"
    assert gate.scan(token(), nonce="n-000002", direction="in", now=NOW)["reason"] == "already_inside"
    assert gate.verify(token(pass_id=43), now=NOW + timedelta(days=1))[1] == "expired"
    assert gate.verify(token(pass_id=44), now=NOW - timedelta(days=1))[1] == "not_yet_valid"
    assert gate.verify(token(event=8), now=NOW)[1] == "invalid"
    assert gate.verify(token()[:-3], now=NOW)[1] == "invalid"
    assert gate.verify(token(pass_id=45), now=NOW, holder_hash="00" * 8)[1] == "holder_mismatch"
    other = signing.KeyRing([signing.generate_key()])
    foreign = signing.encode_token(
        kind=1, object_id=1, scope_id=EVENT, zone=1, not_before=0, not_after=2**31, ring=other
    )
    assert gate.verify(foreign, now=NOW)[1] == "unknown_key"
    assert len(gate.pending) == 2


def test_revocation_delta_is_applied_and_checked_before_time(setup):
    keyring, gate_key, token, _ = setup
    gate = OfflineGate(_bundle(keyring, gate_key, revoked=[5]))
    gate.apply_delta({"since": 1, "version": 2, "pass_ids": [42]})
    assert gate.version == 2
    assert gate.verify(token(), now=NOW + timedelta(days=30))[1] == "revoked"  # revoked and expired
    with pytest.raises(ValueError):
        gate.apply_delta({"since": 9, "version": 10, "pass_ids": []})


def test_zone_and_fail_closed_core_gate(setup):
    keyring, gate_key, token, _ = setup
    core = OfflineGate(_bundle(keyring, gate_key, ring=3))
    assert core.verify(token(zone=1), now=NOW)[1] == "wrong_zone"
    assert core.verify(token(zone=3), now=NOW)[1] == ""
    closed = OfflineGate(_bundle(keyring, gate_key, ring=3, fail_closed=True))
    assert closed.verify(token(zone=3), now=NOW)[1] == "offline_closed"
