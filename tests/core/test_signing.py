import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from base45 import b45decode, b45encode
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from core.signing import (
    KIND_PASS,
    KIND_PERMIT,
    KeyRecord,
    KeyRing,
    TokenError,
    check_validity,
    encode_token,
    generate_key,
    holder_tag,
    load_public_key_set,
    new_kid,
    parse_token,
    public_key_set,
    revoke,
    rotate,
    verify_token,
)

QR_ALNUM = re.compile(r"^[0-9A-Z $%*+\-./:]+$")
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
GATE_KEY = b"g" * 32
NBF, NAF = 1_900_000_000, 1_900_086_400


def make_record(kid: str, seed: int, status="active", day=1) -> KeyRecord:
    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return KeyRecord(
        kid=kid,
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key=private.private_bytes_raw(),
        status=status,
        created_at=datetime(2026, 1, day, tzinfo=UTC),
    )


RING = KeyRing([make_record("k2026a", 1)])


def issue(ring=RING, **overrides) -> str:
    claims = {
        "kind": KIND_PASS,
        "object_id": 123456789,
        "scope_id": 42,
        "zone": 3,
        "not_before": NBF,
        "not_after": NAF,
        "holder_tag": holder_tag(GATE_KEY, "11010519491231002x"),
    }
    claims.update(overrides)
    return encode_token(ring=ring, **claims)


TOKEN = issue()


# --- keys ------------------------------------------------------------------------


def test_new_kid_and_generated_key_shape():
    kid = new_kid()
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", kid)
    rec = generate_key()
    assert rec.status == "active" and len(rec.public_key) == len(rec.private_key) == 32
    assert rec.created_at.tzinfo is not None


def test_key_record_rejects_bad_kid_and_key_sizes():
    good = make_record("ok", 1)
    for bad in ("", "x" * 17, "has space", "é"):
        with pytest.raises(ValueError):
            replace(good, kid=bad)
    with pytest.raises(ValueError):
        replace(good, public_key=b"\x00" * 31)
    with pytest.raises(ValueError):
        replace(good, status="expired")


def test_ring_picks_newest_active_key_with_private_half():
    old = make_record("old", 1, day=1)
    new = make_record("new", 2, day=2)
    public_only = replace(make_record("pub", 3, day=3), private_key=None)
    ring = KeyRing([old, public_only, new])
    assert ring.active.kid == "new"
    kid, signature = ring.sign(b"data")
    assert kid == "new"
    ring.verifier("new").verify(signature, b"data")
    assert ring.verifier("pub") is not None
    assert KeyRing([public_only]).active is None
    with pytest.raises(RuntimeError):
        KeyRing([public_only]).sign(b"data")


def test_ring_refuses_duplicate_kids_and_mismatched_key_pairs():
    with pytest.raises(ValueError):
        KeyRing([make_record("a", 1), make_record("a", 2)])
    with pytest.raises(ValueError):
        KeyRing([replace(make_record("a", 1), public_key=make_record("b", 2).public_key)])


def test_rotation_retires_previous_key_which_still_verifies():
    ring = KeyRing([make_record("first", 1)])
    old_token = issue(ring)
    new_record, records = rotate(ring)
    assert [r.status for r in records] == ["retired", "active"]
    assert ring.records[0].status == "active"  # the old ring is not mutated
    rotated = KeyRing(records)
    assert rotated.active == new_record
    assert verify_token(old_token, rotated.verifier).kid == "first"
    assert verify_token(issue(rotated), rotated.verifier).kid == new_record.kid


def test_revoked_key_is_unknown():
    records = revoke([make_record("k2026a", 1)], "k2026a")
    ring = KeyRing(records)
    assert ring.verifier("k2026a") is None and ring.active is None
    with pytest.raises(TokenError) as info:
        verify_token(TOKEN, ring.verifier)
    assert info.value.reason == "unknown_key"
    with pytest.raises(KeyError):
        revoke(records, "nope")


def test_public_key_set_has_no_private_material_and_omits_revoked():
    records = [
        make_record("act", 1),
        make_record("ret", 2, status="retired"),
        make_record("rev", 3, status="revoked"),
    ]
    document = public_key_set(records)
    assert [k["kid"] for k in document["keys"]] == ["act", "ret"]
    for jwk in document["keys"]:
        assert set(jwk) == {"kty", "crv", "kid", "x", "use", "alg", "status"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert "=" not in jwk["x"] and len(jwk["x"]) == 43
    flat = repr(document)
    for r in records:
        assert r.private_key.hex() not in flat
    assert verify_token(TOKEN, load_public_key_set(public_key_set(RING.records)).get)


# --- tokens ------------------------------------------------------------------------


def test_roundtrip_claims_and_qr_friendly_text():
    claims = verify_token(TOKEN, RING.verifier)
    assert claims.kind == KIND_PASS and claims.kid == "k2026a"
    assert (claims.object_id, claims.scope_id, claims.zone) == (123456789, 42, 3)
    assert (claims.not_before, claims.not_after, claims.version) == (NBF, NAF, 1)
    assert claims.holder_tag == holder_tag(GATE_KEY, "11010519491231002X")
    assert TOKEN.startswith("ZZ1:")
    assert QR_ALNUM.match(TOKEN)
    assert len(TOKEN) < 200


def test_extremes_and_longest_kid_fit_and_roundtrip():
    ring = KeyRing([make_record("x" * 16, 5)])
    text = issue(ring, kind=255, object_id=2**64 - 1, scope_id=0, zone=255, holder_tag=None)
    assert len(text) < 200 and QR_ALNUM.match(text)
    claims = verify_token(text, ring.verifier)
    assert claims.object_id == 2**64 - 1 and claims.holder_tag == bytes(8)


def test_out_of_range_claims_are_refused_at_encode():
    for bad in (
        {"object_id": -1},
        {"object_id": 2**64},
        {"zone": 256},
        {"not_after": 2**32},
        {"not_before": NAF + 1},
        {"holder_tag": b"short"},
    ):
        with pytest.raises(ValueError):
            issue(**bad)


def test_custom_prefix_is_signed():
    text = encode_token(
        kind=KIND_PERMIT,
        object_id=1,
        scope_id=2,
        zone=0,
        not_before=NBF,
        not_after=NAF,
        ring=RING,
        prefix="ZP1:",
    )
    assert verify_token(text, RING.verifier, prefix="ZP1:").kind == KIND_PERMIT
    with pytest.raises(TokenError):  # same bytes under another prefix do not verify
        verify_token("ZZ1:" + text[4:], RING.verifier)
    with pytest.raises(ValueError):
        issue(prefix="zz1:")


def test_parse_returns_signed_bytes_and_signature():
    claims, signed, signature = parse_token(TOKEN)
    assert signed.startswith(b"ZZ1:") and len(signature) == 64
    RING.verifier(claims.kid).verify(signature, signed)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ZZ1:",
        "ZZ2:" + TOKEN[4:],
        TOKEN[4:],
        TOKEN[:-1],
        TOKEN[:-3],
        TOKEN + "\n",
        TOKEN + "00",
        TOKEN.lower(),
        "ZZ1:" + b45encode(b"\x02" + b45decode(TOKEN[4:])[1:]).decode(),
        "ZZ1:" + b45encode(b45decode(TOKEN[4:]) + b"\x00").decode(),
        "ZZ1:" + b45encode(b45decode(TOKEN[4:])[:-1]).decode(),
    ],
)
def test_malformed_tokens_are_invalid(text):
    with pytest.raises(TokenError) as info:
        verify_token(text, RING.verifier)
    assert info.value.reason == "invalid"
    assert info.value.message


def test_forged_signature_is_invalid():
    raw = bytearray(b45decode(TOKEN[4:]))
    raw[-64:] = Ed25519PrivateKey.generate().sign(b"ZZ1:" + bytes(raw[:-64]))
    with pytest.raises(TokenError) as info:
        verify_token("ZZ1:" + b45encode(bytes(raw)).decode(), RING.verifier)
    assert info.value.reason == "invalid"


def test_token_signed_by_unknown_key_is_unknown_key():
    other = KeyRing([make_record("stranger", 9)])
    with pytest.raises(TokenError) as info:
        verify_token(issue(other), RING.verifier)
    assert info.value.reason == "unknown_key"


def test_validity_window_is_half_open():
    claims = verify_token(TOKEN, RING.verifier)
    assert check_validity(claims, NBF - 1) == "not_yet_valid"
    assert check_validity(claims, NBF) is None
    assert check_validity(claims, NAF - 1) is None
    assert check_validity(claims, NAF) == "expired"
    assert check_validity(claims, NAF, leeway=30) is None
    assert check_validity(claims, NBF - 30, leeway=30) is None


def test_holder_tag_is_keyed_normalised_and_eight_bytes():
    a = holder_tag(GATE_KEY, "11010519491231002x")
    assert len(a) == 8
    assert a == holder_tag(GATE_KEY, " 11010519491231002X")
    assert a != holder_tag(b"h" * 32, "11010519491231002X")
    with pytest.raises(ValueError):
        holder_tag(b"short", "11010519491231002X")


# --- tamper properties ---------------------------------------------------------------


def assert_refused(text: str) -> None:
    if text == TOKEN:
        return
    with pytest.raises(TokenError):
        verify_token(text, RING.verifier)


EDIT_CHARS = st.sampled_from(BASE45 + "abxz\n\t#é")


@given(st.integers(0, len(TOKEN) - 1), EDIT_CHARS)
def test_any_single_character_substitution_does_not_verify(position, char):
    assert_refused(TOKEN[:position] + char + TOKEN[position + 1 :])


@given(st.integers(0, len(TOKEN) - 1))
def test_any_truncation_does_not_verify(length):
    assert_refused(TOKEN[:length])


@given(st.integers(0, len(TOKEN)), EDIT_CHARS)
def test_any_insertion_does_not_verify(position, char):
    assert_refused(TOKEN[:position] + char + TOKEN[position:])


@given(st.integers(0, len(b45decode(TOKEN[4:])) * 8 - 1))
def test_any_bit_flip_in_the_binary_form_does_not_verify(bit):
    raw = bytearray(b45decode(TOKEN[4:]))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert_refused("ZZ1:" + b45encode(bytes(raw)).decode())


def test_every_bit_flip_exhaustively():
    raw = b45decode(TOKEN[4:])
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert_refused("ZZ1:" + b45encode(bytes(flipped)).decode())


def test_every_single_substitution_with_the_base45_alphabet_exhaustively():
    for position in range(len(TOKEN)):
        for char in BASE45:
            assert_refused(TOKEN[:position] + char + TOKEN[position + 1 :])


# --- version 2: the daily window ------------------------------------------------------

WINDOWED = issue(daily_window=(9 * 60, 17 * 60 + 30))


def test_a_daily_window_makes_a_version_2_token_that_roundtrips():
    claims = verify_token(WINDOWED, RING.verifier)
    assert (claims.version, claims.day_from, claims.day_to) == (2, 540, 1050)
    assert (claims.object_id, claims.not_before, claims.not_after) == (123456789, NBF, NAF)
    assert len(WINDOWED) - len(TOKEN) <= 6 and QR_ALNUM.match(WINDOWED)
    assert issue(daily_window=(0, 1440)) == TOKEN  # the whole day: version 1, as before


@pytest.mark.parametrize("window", [(600, 600), (700, 600), (-1, 60), (0, 1441), (0.5, 60)])
def test_a_bad_daily_window_is_refused_at_encode(window):
    with pytest.raises(ValueError):
        issue(daily_window=window)


def test_a_version_2_body_with_a_bad_window_or_length_is_invalid():
    raw = bytearray(b45decode(WINDOWED[4:]))
    body_len = len(raw) - 64
    for packed in ((600 << 12) | 600, (0 << 12) | 1441, 0xFFFFFF):
        bad = raw[: body_len - 3] + packed.to_bytes(3, "big") + raw[body_len:]
        with pytest.raises(TokenError):
            parse_token("ZZ1:" + b45encode(bytes(bad)).decode())
    as_v1 = b"\x01" + bytes(raw[1:])  # a version-1 header on a version-2 body
    with pytest.raises(TokenError):
        parse_token("ZZ1:" + b45encode(as_v1).decode())


def test_every_bit_flip_of_a_version_2_token_exhaustively():
    raw = b45decode(WINDOWED[4:])
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TokenError):
            verify_token("ZZ1:" + b45encode(bytes(flipped)).decode(), RING.verifier)
