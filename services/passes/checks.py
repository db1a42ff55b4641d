"""The gate's token checks, shared by the online gate and the offline verifier.

Pure functions over a parsed token: no database, no Redis. Order (design/passes.md):
format -> signature/key -> [revocation: the caller] -> time -> zone -> holder ->
[watch list, anti-passback: the caller]. A verified token is remembered in a
process-wide LRU keyed by its exact text, so the signature of a token is checked once
per process; a cache hit still re-checks that its key is currently known (a revoked
key stops its tokens at once).
"""

from __future__ import annotations

import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.signing import KIND_PASS, TokenClaims, TokenError, check_validity, parse_token


class Refusal(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class VerifiedTokens:
    """Thread-safe LRU: token text -> claims whose signature verified."""

    def __init__(self, size: int = 100_000) -> None:
        self._data: OrderedDict[str, TokenClaims] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, text: str) -> TokenClaims | None:
        with self._lock:
            claims = self._data.get(text)
            if claims is not None:
                self._data.move_to_end(text)
            return claims

    def put(self, text: str, claims: TokenClaims) -> None:
        with self._lock:
            self._data[text] = claims
            if len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


verified_tokens = VerifiedTokens()


def verify_pass_token(
    text: str,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    event_id: int,
    cache: VerifiedTokens | None = verified_tokens,
) -> TokenClaims:
    """Format (kind, event), key and signature; raises :class:`Refusal`."""
    claims = cache.get(text) if cache is not None else None
    if claims is not None:
        if resolve_key(claims.kid) is None:
            raise Refusal("unknown_key")
        return claims
    try:
        claims, signed, signature = parse_token(text)
    except TokenError as exc:
        raise Refusal(exc.reason, "malformed") from None
    if claims.kind != KIND_PASS:
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
    claims: TokenClaims, *, gate_ring: int, now: int, leeway: int, holder_read: bytes | None
) -> Refusal | None:
    """Time, zone, holder — the checks after revocation, in order."""
    timing = check_validity(claims, now, leeway=leeway)
    if timing is not None:
        return Refusal(timing)
    if claims.zone < gate_ring:
        return Refusal("wrong_zone")
    if holder_read is not None and not hmac.compare_digest(holder_read, claims.holder_tag):
        return Refusal("holder_mismatch")
    return None
