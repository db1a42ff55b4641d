"""A gate that verifies passes with only its offline bundle (no network, no database).

The bundle (``services.passes.offline.build_bundle``) is JSON: the event's public keys,
the ring/gate map, the revocation list with its version, the watched pass ids, and the
gate key for holder and plate cross-checks. ``apply_delta`` merges a later revocation
delta.
Scans are kept for upload (``pending``); anti-passback is local to this device — the
server reports conflicts between devices after upload.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from core.signing import load_public_key_set
from services.passes import checks
from services.passes.rules import ATTENTION_REASONS, GATE_REASONS, RULE_SET


@dataclass
class OfflineGate:
    bundle: dict
    revoked: set[int] = field(default_factory=set)
    watched: set[int] = field(default_factory=set)
    version: int = 0
    inside: dict[tuple[int, int], bool] = field(default_factory=dict)
    pending: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = load_public_key_set(self.bundle["keys"])
        self.event_id = int(self.bundle["event"]["id"])
        self.gate = self.bundle["gate"]
        self.max_ring = int(self.bundle["event"]["max_ring"])
        self.gate_key = base64.b64decode(self.bundle["gate_key"])
        self.revoked = set(self.bundle["revocations"]["pass_ids"])
        self.version = int(self.bundle["revocations"]["version"])
        self.watched = set(self.bundle.get("watched_pass_ids", []))
        tz = self.bundle["event"].get("timezone")
        self.tz = ZoneInfo(tz) if tz else checks.DEFAULT_TZ
        self.cache = checks.VerifiedTokens(20_000)

    def apply_delta(self, delta: dict) -> None:
        """Merge a revocation delta (``since`` must not be newer than what we hold)."""
        if int(delta["since"]) > self.version:
            raise ValueError("revocation delta does not connect to this bundle's version")
        self.revoked.update(delta["pass_ids"])
        self.version = max(self.version, int(delta["version"]))

    def verify(
        self,
        qr: str,
        *,
        now: datetime,
        holder_hash: str | None = None,
        plate: str | None = None,
        direction: str = "in",
    ) -> tuple[int | None, str]:
        """(pass id, reason) without touching local state; reason "" means valid. A
        vehicle lane compares the plate read (required there) with the pass; an entry is
        held to the holder's daily window."""
        if self.gate.get("fail_closed"):
            return None, "offline_closed"
        vehicle = bool(self.gate.get("vehicle"))
        holder_read = bytes.fromhex(holder_hash) if holder_hash else None
        if vehicle:
            read = checks.normalize_plate_read(plate or "")
            if not read:
                raise ValueError("a vehicle lane needs the plate read")
            holder_read = checks.plate_tag(self.gate_key, read)
        try:
            claims = checks.verify_pass_token(qr, self.keys.get, self.event_id, self.cache)
        except checks.Refusal as exc:
            return None, exc.reason
        if claims.object_id in self.revoked:
            return claims.object_id, "revoked"
        refusal = checks.after_revocation(
            claims,
            gate_ring=int(self.gate["ring"]),
            now=int(now.timestamp()),
            leeway=RULE_SET["scan_leeway_seconds"],
            holder_read=holder_read,
            vehicle_lane=vehicle,
            tz=self.tz,
            direction=direction,
        )
        if refusal is not None:
            return claims.object_id, refusal.reason
        if claims.object_id in self.watched:
            return claims.object_id, "watchlist"
        return claims.object_id, ""

    def scan(
        self,
        qr: str,
        *,
        nonce: str,
        direction: str,
        now: datetime,
        holder_hash: str | None = None,
        plate: str | None = None,
    ) -> dict:
        """Verify and apply local anti-passback; the scan is queued for upload."""
        pass_id, reason = self.verify(qr, now=now, holder_hash=holder_hash, plate=plate, direction=direction)
        ring = int(self.gate["ring"])
        if reason == "" and pass_id is not None:
            if direction == "in":
                if self.inside.get((pass_id, ring)):
                    reason = "already_inside"
                else:
                    self.inside[(pass_id, ring)] = True
            else:
                for r in range(ring, self.max_ring + 1):
                    self.inside[(pass_id, r)] = False
        self.pending.append(
            {
                "nonce": nonce,
                "qr": qr,
                "direction": direction,
                "scanned_at": now.isoformat(),
                "result": "ok" if not reason else "error",
                "reason": reason or None,
            }
        )
        return {
            "result": "ok" if not reason else "error",
            "reason": reason or None,
            "message": "核验通过，请通行" if not reason else GATE_REASONS.get(reason, "核验未通过"),
            "pass_id": pass_id,
            "require_attention": reason in ATTENTION_REASONS,
        }
