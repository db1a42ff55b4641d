"""The gate's pure checks: signature verified once per token, lanes, plates (no database)."""

from __future__ import annotations

import pytest

from core import signing
from services.passes import checks

KEYRING = signing.KeyRing([signing.generate_key(kid="kid-1")])
GATE_KEY = b"k" * 32
NOW = 1_800_000_000


def _token(kind: int, *, event: int = 3, holder_tag: bytes = b"\x01" * 8) -> str:
    return signing.encode_token(
        kind=kind, object_id=77, scope_id=event, zone=2, not_before=NOW - 60, not_after=NOW + 3600,
        ring=KEYRING, holder_tag=holder_tag,
    )  # fmt: skip


class CountingKey:
    def __init__(self) -> None:
        self.key, self.calls = KEYRING.verifier("kid-1"), 0

    def verify(self, signature: bytes, data: bytes) -> None:
        self.calls += 1
        self.key.verify(signature, data)


def test_a_token_already_verified_is_not_verified_again():
    key, cache = CountingKey(), checks.VerifiedTokens(10)
    token = _token(checks.KIND_PERSON_PASS)
    for _ in range(3):
        assert checks.verify_pass_token(token, {"kid-1": key}.get, 3, cache).object_id == 77
    assert key.calls == 1
    # ... but its event and key still are: another event's gate, a revoked key.
    with pytest.raises(checks.Refusal) as exc:
        checks.verify_pass_token(token, {"kid-1": key}.get, 4, cache)
    assert (exc.value.reason, exc.value.detail) == ("invalid", "wrong_event")
    with pytest.raises(checks.Refusal) as exc:
        checks.verify_pass_token(token, {}.get, 3, cache)
    assert exc.value.reason == "unknown_key"


def test_the_cache_keeps_at_most_its_size_oldest_out_first():
    cache = checks.VerifiedTokens(2)
    tokens = [_token(checks.KIND_PERSON_PASS, event=e) for e in (1, 2, 3)]
    for e, t in zip((1, 2, 3), tokens, strict=True):
        checks.verify_pass_token(t, KEYRING.verifier, e, cache)
    assert len(cache) == 2 and cache.get(tokens[0]) is None and cache.get(tokens[2]) is not None


@pytest.mark.parametrize(
    ("kind", "vehicle_lane", "reason", "detail"),
    [
        (checks.KIND_PERSON_PASS, False, None, None),
        (checks.KIND_VEHICLE_PASS, True, None, None),
        (checks.KIND_PERSON_PASS, True, "wrong_lane", "person_at_vehicle_lane"),
        (checks.KIND_VEHICLE_PASS, False, "wrong_lane", "vehicle_at_person_gate"),
    ],
)
def test_lane_check(kind, vehicle_lane, reason, detail):
    tag = checks.plate_tag(GATE_KEY, "浙F12345")
    claims = checks.verify_pass_token(_token(kind, holder_tag=tag), KEYRING.verifier, 3, cache=None)
    read = tag if vehicle_lane else None
    refusal = checks.after_revocation(
        claims, gate_ring=1, now=NOW, leeway=60, holder_read=read, vehicle_lane=vehicle_lane
    )
    assert (refusal and refusal.reason, refusal and refusal.detail) == (reason, detail)


def test_zone_and_time_come_before_the_lane_and_the_plate_after_it():
    claims = checks.verify_pass_token(_token(checks.KIND_PERSON_PASS), KEYRING.verifier, 3, cache=None)
    wrong_plate = checks.plate_tag(GATE_KEY, "浙F54321")
    check = checks.after_revocation
    assert check(claims, gate_ring=3, now=NOW, leeway=0, holder_read=None, vehicle_lane=True).reason == (
        "wrong_zone"
    )
    assert check(
        claims, gate_ring=1, now=NOW + 7200, leeway=0, holder_read=None, vehicle_lane=True
    ).reason == ("expired")
    vehicle = checks.verify_pass_token(
        _token(checks.KIND_VEHICLE_PASS, holder_tag=checks.plate_tag(GATE_KEY, "浙F12345")),
        KEYRING.verifier,
        3,
        cache=None,
    )
    refusal = check(vehicle, gate_ring=1, now=NOW, leeway=0, holder_read=wrong_plate, vehicle_lane=True)
    assert (refusal.reason, refusal.detail) == ("holder_mismatch", "plate_mismatch")


def test_plate_reads_are_normalised_like_applications():
    assert checks.normalize_plate_read(" 浙f·123-45 ") == "浙F12345"
    assert checks.normalize_plate_read("粤Ｂ・Ｄ１2345") == "粤BD12345"  # full-width operator input


def test_other_token_kinds_are_refused():
    token = _token(signing.KIND_PERMIT)
    with pytest.raises(checks.Refusal) as exc:
        checks.verify_pass_token(token, KEYRING.verifier, 3, cache=None)
    assert (exc.value.reason, exc.value.detail) == ("invalid", "wrong_kind")
