"""`flask quiz ...`: import question files, sweep overdue work, rebuild Redis caches."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from core.errors import DomainError

quiz_cli = AppGroup("quiz", help="Question bank, competitions and points.")


@quiz_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only check: list every bad row, write nothing.")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv", "aiken", "gift"]), default=None)
@click.option("--topic", "topics", multiple=True, help="Topic for formats without one (Aiken/GIFT).")
@click.option("--difficulty", type=click.IntRange(1, 5), default=3)
def import_file(file: Path, dry_run: bool, fmt: str | None, topics: tuple[str, ...], difficulty: int) -> None:
    """Import FILE (.xlsx, .csv, Aiken .txt, GIFT .gift) all-or-nothing; re-running adds nothing."""
    from tqdm import tqdm

    from services.quiz import importers

    ext = current_app.extensions["zhizhi"]
    content = file.read_bytes()
    with ext.db.session() as s:
        check = importers.run_import(
            s, None, content, file.name, fmt=fmt, topics=list(topics), difficulty=difficulty, dry_run=True
        )
        for err in check["errors"]:
            click.echo(f"第 {err['line']} 行：{err['reason']}", err=True)
        if dry_run or check["errors"]:
            click.echo(
                f"试导入：共 {check['total']} 题，可新增 {check['would_add']}，重复 {check['skipped']}，"
                f"错误 {len(check['errors'])}"
            )
            if check["errors"] and not dry_run:
                raise SystemExit(1)
            return
        with tqdm(total=check["would_add"], desc="导入", unit="题") as bar:
            try:
                report = importers.run_import(
                    s,
                    None,
                    content,
                    file.name,
                    fmt=fmt,
                    topics=list(topics),
                    difficulty=difficulty,
                    progress=bar.update,
                )
            except DomainError as exc:
                raise click.ClickException(exc.message) from exc
    click.echo(f"导入完成：新增 {report['added']} 题，跳过重复 {report['skipped']} 题")


@quiz_cli.command("sweep")
def sweep() -> None:
    """Record accepted submits, grade overdue attempts and finalise ended competitions
    (cron: every minute; the scheduler's quiz_sweep row does the same)."""
    from services.quiz import attempts, competitions, intake, recording

    ext = current_app.extensions["zhizhi"]
    recorded = recording.drain_all(ext.db, ext.redis) if intake.enabled(current_app) else 0
    with ext.db.session() as s:
        closed = attempts.close_overdue(s)
        done = competitions.finalize_due(s)
    click.echo(f"recorded {recorded} submits, closed {closed} attempts, finalised competitions {done}")


@quiz_cli.command("rebuild-cache")
def rebuild_cache() -> None:
    """Rebuild the points sorted sets from the ledger."""
    from services.quiz import points

    ext = current_app.extensions["zhizhi"]
    with ext.db.session() as s:
        n = points.rebuild(s, ext.redis)
    click.echo(f"rebuilt balances of {n} workers")
