"""`flask passes ...`: flush gate passages into the database, resync gate state."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

passes_cli = AppGroup("passes", help="Visitor & vehicle passes.")


@passes_cli.command("flush-passages")
def flush_passages_cmd() -> None:
    """Move gate scans from the Redis stream into the database (idempotent; cron it)."""
    from jobs.passes import flush_passages

    click.echo(f"passages flushed: {flush_passages(current_app._get_current_object())}")


@passes_cli.command("sync-gates")
@click.argument("event_id", type=int)
def sync_gates(event_id: int) -> None:
    """Reload EVENT_ID's revoked and watched pass sets into Redis from the database."""
    from core.db import utcnow
    from services.passes import hotstate

    ext = current_app.extensions["zhizhi"]
    with ext.db.session() as s:
        version = hotstate.sync_event(ext.redis, s, event_id, utcnow())
    click.echo(f"event {event_id}: revocation version {version} published")
