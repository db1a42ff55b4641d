"""`flask jobs ...`: run what is due, list failed/stuck rows, re-queue one."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Background jobs (outbox, RQ, periodic work).")


@jobs_cli.command("run-due")
def run_due() -> None:
    """Run everything that is due once (the embedded default and cron use this)."""
    from jobs.maintenance import reconcile

    report = reconcile(current_app._get_current_object())
    click.echo(f"outbox: {report['due']} due, {report['stuck']} stuck re-dispatched")
