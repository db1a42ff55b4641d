"""`flask permits ...`: catalogue import, daily/hourly runs, quarterly ratings, ledger flush."""

from __future__ import annotations

from datetime import date

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

permits_cli = AppGroup("permits", help="Enterprise e-permits (precursor chemicals).")


def _unit_of_work(fn):
    ext = current_app.extensions["zhizhi"]
    session = ext.db.sessionmaker()
    try:
        result = fn(session)
        ext.commit(session)
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@permits_cli.command("import-catalogue")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="目录日期（默认今天）"
)
def import_catalogue(file: str, as_of) -> None:
    """Import the chemical catalogue CSV (category,name_zh,name_en,cas,note) dated AS_OF."""
    from core.db import utcnow
    from services.permits import catalogue, issuing

    day: date = as_of.date() if as_of else issuing.local_date(utcnow())
    report = _unit_of_work(lambda s: catalogue.import_file(s, file, day))
    click.echo(
        f"catalogue {day}: {report['added']} added, {report['updated']} updated, "
        f"{report['deactivated']} deactivated"
    )


@permits_cli.command("flush-ledger")
def flush_ledger() -> None:
    """Move write-behind ledger events from the Redis stream into the database (idempotent)."""
    from services.permits import ledger_drain

    click.echo(f"ledger events flushed: {ledger_drain.flush(current_app._get_current_object())}")


@permits_cli.command("daily")
def daily() -> None:
    """Reminders, expiry blocking, overdue waybills, risk models, escalation."""
    from core.db import utcnow
    from services.permits import ledger_drain, periodic

    ledger_drain.flush(current_app._get_current_object())  # the risk models read the ledger
    click.echo(_unit_of_work(lambda s: periodic.run_daily(s, utcnow())))


@permits_cli.command("schedule")
def schedule() -> None:
    """Start the periodic chain (daily 09:00 and hourly outbox rows); safe to repeat."""
    from core.db import utcnow
    from services.permits import periodic

    click.echo(_unit_of_work(lambda s: periodic.schedule(s, utcnow())))


@permits_cli.command("rate-quarter")
@click.argument("quarter")
def rate_quarter(quarter: str) -> None:
    """Compute star ratings of every enterprise for QUARTER (e.g. 2026Q3)."""
    from models.permits.enterprises import Enterprise
    from services.permits import ratings

    def run(s):
        return [ratings.rate_quarter(s, e, quarter).stars for e in s.scalars(select(Enterprise.id))]

    click.echo(f"{quarter}: {len(_unit_of_work(run))} enterprises rated")
