"""Visitor & vehicle passes (数字安保): events, zones, gates, applications, passes, lists."""

from models.passes.applications import (
    Application,
    ApplicationKind,
    ApplicationStatus,
    PassGroup,
    RuleResult,
)
from models.passes.credentials import (
    Passage,
    PassCredential,
    PassStatus,
    Revocation,
    ScanRefusal,
)
from models.passes.events import Event, Gate, GateDirection, Zone
from models.passes.lists import Alert, AlertStatus, TrustEntry, WatchEntry, WatchSeverity

__all__ = [
    "Alert",
    "AlertStatus",
    "Application",
    "ApplicationKind",
    "ApplicationStatus",
    "Event",
    "Gate",
    "GateDirection",
    "PassCredential",
    "PassGroup",
    "PassStatus",
    "Passage",
    "Revocation",
    "RuleResult",
    "ScanRefusal",
    "TrustEntry",
    "WatchEntry",
    "WatchSeverity",
    "Zone",
]
