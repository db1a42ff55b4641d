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
    from jobs.periodic import run_due as run_periodic

    app = current_app._get_current_object()
    for name, outcome in run_periodic(app):
        click.echo(f"periodic {name}: {outcome}")
    report = reconcile(app)
    click.echo(f"outbox: {report['due']} due, {report['stuck']} stuck re-dispatched")


def _print(rows: list[dict]) -> None:
    if not rows:
        click.echo("(none)")
    for r in rows:
        click.echo(
            f"#{r['id']} {r['kind']} [{r['queue']}] {r['status']} attempts={r['attempts']}: {r['reason']}"
        )


@jobs_cli.command("failed")
@click.option("--limit", default=50)
def failed(limit: int) -> None:
    """Jobs that failed for good, with the reason."""
    from jobs.ops import list_jobs

    with current_app.extensions["zhizhi"].db.session() as s:
        _print(list_jobs(s, "failed", limit=limit))


@jobs_cli.command("stuck")
@click.option("--limit", default=50)
def stuck(limit: int) -> None:
    """Jobs running longer than their timeout (their worker probably died)."""
    from jobs.ops import list_jobs

    with current_app.extensions["zhizhi"].db.session() as s:
        _print(list_jobs(s, "stuck", limit=limit))


@jobs_cli.command("requeue")
@click.argument("item_id", type=int)
def requeue(item_id: int) -> None:
    """Put a failed or stuck job back in its queue."""
    from core.errors import DomainError
    from jobs.ops import requeue as do_requeue

    ext = current_app.extensions["zhizhi"]
    session = ext.db.sessionmaker()
    try:
        row = do_requeue(session, item_id)
        ext.commit(session)
    except DomainError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from exc
    finally:
        session.close()
    click.echo(f"#{row['id']} {row['kind']} re-queued")
