"""Ed25519 key ring and the compact signed token carried in pass/permit QR codes.

Token text: ``prefix + base45(body + signature)`` where ``prefix`` (default
``"ZZ1:"``) and the base45 alphabet are both QR alphanumeric, so the QR code uses
alphanumeric mode. Body layout (big-endian, fixed)::

    version u8 | kind u8 | kid_len u8 | kid ascii | object_id u64 |
    scope_id u64 | zone u8 | not_before u32 | not_after u32 | holder_tag 8 bytes
    [version 2 only: daily window, 3 bytes = day_from << 12 | day_to]

followed by a 64-byte Ed25519 signature over ``prefix`` (ASCII) + body. Version 1 has
no daily window (valid all day); version 2 adds one, as minutes of the local day
(``0 <= day_from < day_to <= 1440``, in the time zone of the scope, e.g. the event's):
tokens valid around the clock keep the version-1 layout, so they stay as short as
before and every version-1 token issued earlier still verifies. Parsing is
strict: exactly one byte string corresponds to a valid token text (no lower case,
no whitespace, no trailing bytes), so no edit of the text keeps a signature valid.

Check order for a scanned token (design/passes.md, "Gate check"):

1. format        -> :func:`parse_token` raises ``TokenError("invalid")``
2. key           -> ``resolve_key(kid)`` is None: ``TokenError("unknown_key")``
   (unknown, or revoked: revoked keys are never returned by :class:`KeyRing`)
3. signature     -> ``TokenError("invalid")``
4. revocation    -> the caller checks the object id against its revocation list
5. time          -> :func:`check_validity` returns ``"not_yet_valid"``/``"expired"``

Steps 1-3 are :func:`verify_token` (a signature needs its key, hence key first);
4-5 are the caller's, so a revoked and expired pass is reported as ``revoked``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from base45 import b45decode, b45encode
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KeyStatus = Literal["active", "retired", "revoked"]
KEY_STATUSES = ("active", "retired", "revoked")
TOKEN_VERSION = 1
#: Layout with a daily window (minutes of the local day) after the holder tag.
TOKEN_VERSION_WINDOW = 2
FULL_DAY = (0, 1440)
KIND_PASS = 1
KIND_PERMIT = 2
DEFAULT_PREFIX = "ZZ1:"

TOKEN_REASON_MESSAGES = {
    "invalid": "二维码无效：格式或签名错误",
    "unknown_key": "二维码签名密钥未知或已吊销",
    "not_yet_valid": "证件尚未生效",
    "expired": "证件已过期",
}

_KID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_QR_ALNUM = re.compile(r"[0-9A-Z $%*+\-./:]+")
_FIXED = struct.Struct(">QQBII8s")
_SIG_LEN = 64
_HEAD_LEN = 3
_WINDOW_LEN = 3
_ZERO_TAG = bytes(8)
_FIELD_BITS = (("kind", 8), ("object_id", 64), ("scope_id", 64), ("zone", 8))
_FIELD_BITS += (("not_before", 32), ("not_after", 32))


# --- keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRecord:
    """One Ed25519 key pair (raw 32-byte keys); ``private_key`` None on verifiers."""

    kid: str
    public_key: bytes
    private_key: bytes | None
    status: KeyStatus
    created_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID.fullmatch(self.kid):
            raise ValueError(f"kid must match [A-Za-z0-9_-]{{1,16}}: {self.kid!r}")
        if len(self.public_key) != 32:
            raise ValueError("public_key must be 32 raw bytes")
        if self.private_key is not None and len(self.private_key) != 32:
            raise ValueError("private_key must be 32 raw bytes")
        if self.status not in KEY_STATUSES:
            raise ValueError(f"unknown key status {self.status!r}")


def new_kid() -> str:
    """A random 8-character URL-safe key id."""
    return secrets.token_urlsafe(6)


def generate_key(*, kid: str | None = None, now: datetime | None = None) -> KeyRecord:
    """A fresh active key pair."""
    private = Ed25519PrivateKey.generate()
    return KeyRecord(
        kid=kid or new_kid(),
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key=private.private_bytes_raw(),
        status="active",
        created_at=now or datetime.now(UTC),
    )


class KeyRing:
    """Immutable view over key records with parsed keys cached.

    ``active`` is the newest active record that has a private key (or None).
    ``verifier(kid)`` returns the public key of an active or retired record and
    None for unknown or revoked kids, so it can be passed to :func:`verify_token`.
    """

    def __init__(self, records: Iterable[KeyRecord]) -> None:
        self.records: tuple[KeyRecord, ...] = tuple(records)
        self._by_kid: dict[str, KeyRecord] = {}
        self._verifiers: dict[str, Ed25519PublicKey] = {}
        for record in self.records:
            if record.kid in self._by_kid:
                raise ValueError(f"duplicate kid {record.kid!r}")
            self._by_kid[record.kid] = record
            if record.status != "revoked":
                self._verifiers[record.kid] = Ed25519PublicKey.from_public_bytes(record.public_key)
        signers = [r for r in self.records if r.status == "active" and r.private_key]
        self.active: KeyRecord | None = max(signers, key=_created_utc, default=None)
        self._signer: Ed25519PrivateKey | None = None
        if self.active is not None:
            self._signer = _load_private(self.active)

    def get(self, kid: str) -> KeyRecord | None:
        return self._by_kid.get(kid)

    def verifier(self, kid: str) -> Ed25519PublicKey | None:
        return self._verifiers.get(kid)

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """(kid, signature) with the active key; RuntimeError if there is none."""
        if self.active is None or self._signer is None:
            raise RuntimeError("key ring has no active signing key")
        return self.active.kid, self._signer.sign(data)


def _created_utc(record: KeyRecord) -> datetime:
    # SQLite hands back naive datetimes; they are stored as UTC.
    created = record.created_at
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def _load_private(record: KeyRecord) -> Ed25519PrivateKey:
    assert record.private_key is not None
    private = Ed25519PrivateKey.from_private_bytes(record.private_key)
    derived = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if not hmac.compare_digest(derived, record.public_key):
        raise ValueError(f"key {record.kid!r}: private key does not match public key")
    return private


def rotate(ring: KeyRing, *, now: datetime | None = None) -> tuple[KeyRecord, list[KeyRecord]]:
    """Generate a new active key; currently active keys become retired (still verify).

    Returns the new record and the full updated record list (new one last); the
    caller persists them and builds a new :class:`KeyRing`.
    """
    kid = new_kid()
    while ring.get(kid) is not None:
        kid = new_kid()
    new_record = generate_key(kid=kid, now=now)
    updated = [replace(r, status="retired") if r.status == "active" else r for r in ring.records]
    return new_record, [*updated, new_record]


def revoke(records: Iterable[KeyRecord], kid: str) -> list[KeyRecord]:
    """Records with ``kid`` marked revoked (its tokens then fail as unknown_key)."""
    out = [replace(r, status="revoked") if r.kid == kid else r for r in records]
    if all(r.kid != kid for r in out):
        raise KeyError(kid)
    return out


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_key_set(records: Iterable[KeyRecord]) -> dict:
    """JWKS-style public keys for ``/api/v1/keys``; revoked keys omitted."""
    keys = [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": r.kid,
            "x": _b64url(r.public_key),
            "use": "sig",
            "alg": "EdDSA",
            "status": r.status,
        }
        for r in records
        if r.status != "revoked"
    ]
    return {"keys": keys}


def load_public_key_set(document: Mapping) -> dict[str, Ed25519PublicKey]:
    """kid -> public key from a :func:`public_key_set` document (offline verifiers)."""
    out: dict[str, Ed25519PublicKey] = {}
    for jwk in document.get("keys", ()):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if jwk.get("status") == "revoked":
            continue
        x = jwk["x"]
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        out[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(raw)
    return out


# --- tokens --------------------------------------------------------------------


class TokenError(Exception):
    """A token was refused; ``reason`` is ``"invalid"`` or ``"unknown_key"``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        return TOKEN_REASON_MESSAGES.get(self.reason, "二维码无效")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    kind: int
    kid: str
    object_id: int
    scope_id: int
    zone: int
    not_before: int
    not_after: int
    holder_tag: bytes
    version: int = TOKEN_VERSION
    #: Daily window in minutes of the local day (version 2; version 1 is the whole day).
    day_from: int = 0
    day_to: int = 1440


def holder_tag(gate_key: bytes, resident_id: str) -> bytes:
    """HMAC-SHA256(gate_key, normalised ID number)[:8] — keyed, never a plain hash."""
    if len(gate_key) < 16:
        raise ValueError("gate key must be at least 16 bytes")
    normalised = "".join(resident_id.split()).upper()
    return hmac.new(gate_key, normalised.encode("ascii"), hashlib.sha256).digest()[:8]


def _check_range(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be an unsigned {bits}-bit integer: {value!r}")


def _pack_body(claims: TokenClaims) -> bytes:
    for name, bits in _FIELD_BITS:
        _check_range(name, getattr(claims, name), bits)
    if claims.not_after < claims.not_before:
        raise ValueError("not_after is before not_before")
    if len(claims.holder_tag) != 8:
        raise ValueError("holder_tag must be 8 bytes")
    if claims.version not in (TOKEN_VERSION, TOKEN_VERSION_WINDOW):
        raise ValueError(f"unknown token version {claims.version!r}")
    window = (claims.day_from, claims.day_to)
    if claims.version == TOKEN_VERSION and window != FULL_DAY:
        raise ValueError("a daily window needs token version 2")
    if not _window_ok(*window):
        raise ValueError(f"daily window must satisfy 0 <= day_from < day_to <= 1440: {window!r}")
    kid = claims.kid.encode("ascii")
    fixed = _FIXED.pack(
        claims.object_id,
        claims.scope_id,
        claims.zone,
        claims.not_before,
        claims.not_after,
        claims.holder_tag,
    )
    head = bytes((claims.version, claims.kind, len(kid))) + kid + fixed
    if claims.version == TOKEN_VERSION_WINDOW:
        head += (claims.day_from << 12 | claims.day_to).to_bytes(_WINDOW_LEN, "big")
    return head


def _window_ok(day_from: int, day_to: int) -> bool:
    return isinstance(day_from, int) and isinstance(day_to, int) and 0 <= day_from < day_to <= FULL_DAY[1]


def _check_prefix(prefix: str) -> bytes:
    if prefix and not _QR_ALNUM.fullmatch(prefix):
        raise ValueError("prefix must use the QR alphanumeric alphabet")
    return prefix.encode("ascii")


def encode_token(
    *,
    kind: int,
    object_id: int,
    scope_id: int,
    zone: int,
    not_before: int,
    not_after: int,
    ring: KeyRing,
    holder_tag: bytes | None = None,
    prefix: str = DEFAULT_PREFIX,
    daily_window: tuple[int, int] | None = None,
) -> str:
    """Sign the claims with ``ring.active`` and return the QR text. ``daily_window``
    (minutes of the local day, end exclusive) makes a version-2 token unless it is the
    whole day."""
    if ring.active is None:
        raise RuntimeError("key ring has no active signing key")
    claims = TokenClaims(
        kind=kind,
        kid=ring.active.kid,
        object_id=object_id,
        scope_id=scope_id,
        zone=zone,
        not_before=not_before,
        not_after=not_after,
        holder_tag=holder_tag or _ZERO_TAG,
    )
    if daily_window is not None and tuple(daily_window) != FULL_DAY:
        claims = replace(
            claims, version=TOKEN_VERSION_WINDOW, day_from=daily_window[0], day_to=daily_window[1]
        )
    body = _pack_body(claims)
    kid, signature = ring.sign(_check_prefix(prefix) + body)
    assert kid == claims.kid
    return prefix + b45encode(body + signature).decode("ascii")


def _unpack(raw: bytes) -> tuple[TokenClaims, int]:
    """Claims and the body length; TokenError("invalid") on any layout error."""
    if len(raw) < _HEAD_LEN or raw[0] not in (TOKEN_VERSION, TOKEN_VERSION_WINDOW):
        raise TokenError("invalid")
    kid_len = raw[2]
    body_len = _HEAD_LEN + kid_len + _FIXED.size
    if raw[0] == TOKEN_VERSION_WINDOW:
        body_len += _WINDOW_LEN
    if not 1 <= kid_len <= 16 or len(raw) != body_len + _SIG_LEN:
        raise TokenError("invalid")
    try:
        kid = raw[_HEAD_LEN : _HEAD_LEN + kid_len].decode("ascii")
    except UnicodeDecodeError:
        raise TokenError("invalid") from None
    if not _KID.fullmatch(kid):
        raise TokenError("invalid")
    object_id, scope_id, zone, nbf, naf, tag = _FIXED.unpack_from(raw, _HEAD_LEN + kid_len)
    day_from, day_to = FULL_DAY
    if raw[0] == TOKEN_VERSION_WINDOW:
        packed = int.from_bytes(raw[body_len - _WINDOW_LEN : body_len], "big")
        day_from, day_to = packed >> 12, packed & 0xFFF
        if not _window_ok(day_from, day_to):
            raise TokenError("invalid")
    claims = TokenClaims(raw[1], kid, object_id, scope_id, zone, nbf, naf, tag, raw[0], day_from, day_to)
    return claims, body_len


def parse_token(text: str, prefix: str = DEFAULT_PREFIX) -> tuple[TokenClaims, bytes, bytes]:
    """(claims, signed_bytes, signature) without checking the signature.

    Raises ``TokenError("invalid")`` for a wrong prefix, characters outside the
    base45 alphabet (lower case and whitespace included), bad base45, a wrong
    version, kid or length, or trailing bytes.
    """
    if not isinstance(text, str) or not text.startswith(prefix):
        raise TokenError("invalid")
    payload = text[len(prefix) :]
    if not _QR_ALNUM.fullmatch(payload):
        raise TokenError("invalid")
    try:
        raw = b45decode(payload)
    except ValueError:
        raise TokenError("invalid") from None
    claims, body_len = _unpack(raw)
    return claims, prefix.encode("ascii") + raw[:body_len], raw[body_len:]


def verify_token(
    text: str,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    prefix: str = DEFAULT_PREFIX,
) -> TokenClaims:
    """Format, key and signature checks (steps 1-3 of the module docstring).

    ``resolve_key`` is typically ``KeyRing.verifier`` or ``dict.get`` over
    :func:`load_public_key_set`. Revocation and time are the caller's next steps.
    """
    claims, signed, signature = parse_token(text, prefix)
    key = resolve_key(claims.kid)
    if key is None:
        raise TokenError("unknown_key")
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        raise TokenError("invalid") from None
    return claims


def check_validity(
    claims: TokenClaims, now: int, *, leeway: int = 0
) -> Literal["expired", "not_yet_valid"] | None:
    """Time check: valid while ``not_before <= now < not_after`` (± ``leeway`` s)."""
    if now + leeway < claims.not_before:
        return "not_yet_valid"
    if now - leeway >= claims.not_after:
        return "expired"
    return None
