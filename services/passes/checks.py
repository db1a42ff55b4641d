"""The gate's token checks, shared by the online gate and the offline verifier.

Pure functions over a parsed token: no database, no Redis. Order (design/passes.md):
format -> signature/key -> [revocation: the caller] -> time (validity, then the holder's
daily window) -> zone -> lane -> holder -> [watch list, anti-passback: the caller]. A
verified token is remembered in a process-wide cache keyed by its exact text, so the
signature of a token is checked once per process; a cache hit still re-checks that its
key is currently known (a revoked key stops its tokens at once).

Person and vehicle passes differ in the signed ``kind`` byte, so a gate knows which
lane a pass belongs to without a lookup: a person pass at a vehicle lane, or a vehicle
pass at a pedestrian gate, is ``wrong_lane``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import unicodedata
from collections.abc import Callable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.signing import (
    KIND_PASS,
    TOKEN_VERSION_WINDOW,
    TokenClaims,
    TokenError,
    check_validity,
    parse_token,
)

#: Token kinds of the pass domain: ``KIND_PASS`` (a person) and a vehicle pass. The
#: vehicle kind lives here until core.signing names it (KIND_VEHICLE_PASS = 3).
KIND_PERSON_PASS = KIND_PASS
KIND_VEHICLE_PASS = 3
PASS_KINDS = frozenset({KIND_PERSON_PASS, KIND_VEHICLE_PASS})
#: Events store their time zone; a bundle from before it carried one means this.
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


_PLATE_NOISE = re.compile(r"[\s·•・\u2027\u30fb\-]")


def normalize_plate_read(plate: str) -> str:
    """A plate as a camera or an operator reports it, in the form applications store
    (full-width letters and digits folded, upper case, no spaces, middle dots or
    hyphens): "浙ａ·１23-45" -> "浙A12345"."""
    return _PLATE_NOISE.sub("", unicodedata.normalize("NFKC", plate)).upper()


def plate_tag(key: bytes, plate: str) -> bytes:
    """Holder tag of a vehicle: HMAC-SHA256(gate key, "plate:" + plate)[:8]."""
    return hmac.new(key, ("plate:" + plate).encode("utf-8"), hashlib.sha256).digest()[:8]


class Refusal(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class VerifiedTokens:
    """Token text -> claims whose signature verified, at most ``size`` entries.

    Reads take no lock (a dict lookup is atomic under the GIL) and do not reorder:
    the oldest insertions are evicted first. Every gate scan reads this, so a hit costs
    one dict lookup; a pass that is still scanned after eviction is verified once more.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._data: dict[str, TokenClaims] = {}
        self._size = size
        self._lock = threading.Lock()
        self.get = self._data.get

    def put(self, text: str, claims: TokenClaims) -> None:
        with self._lock:
            self._data[text] = claims
            while len(self._data) > self._size:
                del self._data[next(iter(self._data))]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


verified_tokens = VerifiedTokens()


def verify_pass_token(
    text: str,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    event_id: int,
    cache: VerifiedTokens | None = verified_tokens,
) -> TokenClaims:
    """Format (kind, event), key and signature; raises :class:`Refusal`. A token seen
    before (same text) is not verified again; its event and key are still checked."""
    claims = cache.get(text) if cache is not None else None
    if claims is not None:
        if claims.scope_id != event_id:
            raise Refusal("invalid", "wrong_event")
        if resolve_key(claims.kid) is None:
            raise Refusal("unknown_key")
        return claims
    try:
        claims, signed, signature = parse_token(text)
    except TokenError as exc:
        raise Refusal(exc.reason, "malformed") from None
    if claims.kind not in PASS_KINDS:
        raise Refusal("invalid", "wrong_kind")
    if claims.scope_id != event_id:
        raise Refusal("invalid", "wrong_event")
    key = resolve_key(claims.kid)
    if key is None:
        raise Refusal("unknown_key")
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        raise Refusal("invalid", "bad_signature") from None
    if cache is not None:
        cache.put(text, claims)
    return claims


def after_revocation(
    claims: TokenClaims,
    *,
    gate_ring: int,
    now: int,
    leeway: int,
    holder_read: bytes | None,
    vehicle_lane: bool = False,
    tz: tzinfo = DEFAULT_TZ,
    direction: str = "in",
) -> Refusal | None:
    """Time, zone, lane, holder — the checks after revocation, in order. At a vehicle
    lane ``holder_read`` is the tag of the plate the gate read (see ``plate_tag``).
    ``tz`` is the event's time zone: the daily window a version-2 token carries is in
    its local time. Exits are never held to the daily window (someone who stayed past
    their time slot must be able to leave); the pass's overall validity still applies."""
    timing = check_validity(claims, now, leeway=leeway)
    if timing is not None:
        return Refusal(timing)
    if claims.version == TOKEN_VERSION_WINDOW and direction != "out":
        refusal = daily_window(claims, now, leeway, tz)
        if refusal is not None:
            return refusal
    if claims.zone < gate_ring:
        return Refusal("wrong_zone")
    if (claims.kind == KIND_VEHICLE_PASS) != vehicle_lane:
        return Refusal("wrong_lane", "person_at_vehicle_lane" if vehicle_lane else "vehicle_at_person_gate")
    if holder_read is not None and not hmac.compare_digest(holder_read, claims.holder_tag):
        return Refusal("holder_mismatch", "plate_mismatch" if vehicle_lane else "")
    return None


def daily_window(claims: TokenClaims, now: int, leeway: int, tz: tzinfo) -> Refusal | None:
    """The holder's time slot on the day of the scan (local time in ``tz``, ± ``leeway``
    seconds): before it ``not_yet_valid``, after it ``expired``, each with its detail."""
    local = datetime.fromtimestamp(now, tz)
    second = local.hour * 3600 + local.minute * 60 + local.second
    if second + leeway < claims.day_from * 60:
        return Refusal("not_yet_valid", "before_daily_window")
    if second - leeway >= claims.day_to * 60:
        return Refusal("expired", "after_daily_window")
    return None
