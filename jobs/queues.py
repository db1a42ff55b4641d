"""Queue names and their timeouts, in one place."""

from __future__ import annotations

DEFAULT = "default"
CERTIFICATES = "certificates"
NOTIFICATIONS = "notifications"
MAINTENANCE = "maintenance"

#: name -> default job timeout in seconds
QUEUES: dict[str, int] = {
    CERTIFICATES: 120,
    NOTIFICATIONS: 60,
    DEFAULT: 120,
    MAINTENANCE: 900,
}


def queue_name(prefix: str, name: str) -> str:
    """Queue names carry an optional prefix so several deployments can share one Redis."""
    return f"{prefix}{name}" if prefix else name
