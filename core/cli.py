"""Flask CLI commands: db, seed-demo, keys, jobs (domains add their own groups)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup


def _ext():
    return current_app.extensions["zhizhi"]


db_cli = AppGroup("db", help="Database migrations (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: heads)."""
    from core.migrate import upgrade

    upgrade(_ext().settings.database_url, revision)
    click.echo("database upgraded")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--empty", is_flag=True, help="Do not autogenerate.")
def db_revision(message: str, empty: bool) -> None:
    """Create a migration from the difference between the models and the database."""
    from core.migrate import revision

    revision(_ext().settings.database_url, message, autogenerate=not empty)


keys_cli = AppGroup("keys", help="Signing keys.")


@keys_cli.command("rotate")
@click.argument("scope", default="default")
def keys_rotate(scope: str) -> None:
    """Retire the active key of SCOPE and create a new one."""
    from services import keys

    ext = _ext()
    with ext.db.session() as s:
        kid = keys.rotate(s, scope, ext.settings.signing_kek)
    click.echo(f"new key {kid} for {scope}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Load demo data (idempotent: running it again changes nothing)."""
    from services.demo import seed_all

    ext = _ext()
    with ext.db.session() as s:
        report = seed_all(s, ext.settings)
    for line in report:
        click.echo(line)


def register(app: Flask) -> None:
    from bot.cli import wechat_cli
    from jobs.cli import jobs_cli
    from services.passes.cli import passes_cli
    from services.permits.cli import permits_cli
    from services.quiz.cli import quiz_cli

    app.cli.add_command(db_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(quiz_cli)
    app.cli.add_command(passes_cli)
    app.cli.add_command(permits_cli)
    app.cli.add_command(wechat_cli)
