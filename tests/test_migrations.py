"""Alembic migrations build the schema the models describe, from an empty database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import models
from core.migrate import upgrade


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, models.Base.metadata)
    engine.dispose()
    return diff


def test_migrated_schema_matches_models(app, database_url) -> None:
    # The session database was upgraded by the app fixture (PostgreSQL in CI).
    assert _diff(database_url) == []


def test_upgrade_of_an_empty_sqlite_database(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    assert _diff(url) == []
