"""SQLAlchemy 2.0 plumbing: declarative base, engine/session factory, UTC datetimes.

Services receive a ``Session`` explicitly and only flush; the edge (request handler,
job wrapper, CLI command) owns the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip on every checkout. A connection that died (server
    # restart, pg_terminate_backend) raises a disconnect error once; SQLAlchemy then
    # invalidates the pool and the API answers 503 temporarily_unavailable (retryable).
    kwargs.setdefault("pool_pre_ping", False)
    return create_engine(url, **kwargs)


class Database:
    """Engine plus a session factory; one per app (stored in ``app.extensions``)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker: Callable[[], Session] = sessionmaker(
            self.engine, expire_on_commit=False, autoflush=True
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on error."""
        s = self.sessionmaker()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


# --- work that must wait for the commit ------------------------------------------------

_AFTER_COMMIT = "zhizhi_after_commit"
_log = logging.getLogger("zhizhi.db")


def after_commit(session: Session, callback: Callable[[], Any], *, key: Any = None) -> None:
    """Run ``callback()`` once ``session``'s outermost transaction commits (cache
    invalidation, publishing to Redis: nothing another request may see before the data).

    Registered inside a transaction or savepoint that is rolled back, it is forgotten. A
    ``key`` registers at most one callback per unit of work. A callback that fails is
    logged, never raised: the commit has happened.
    """
    pending = session.info.setdefault(_AFTER_COMMIT, {})
    if key is None:
        key = object()
    if key not in pending:
        pending[key] = (session.get_nested_transaction() or session.get_transaction(), callback)
    _listen()


def _run_after_commit(session: Session) -> None:
    pending = session.info.pop(_AFTER_COMMIT, None)
    for _tx, callback in (pending or {}).values():
        try:
            callback()
        except Exception:  # noqa: BLE001 - the data is committed; the callback's owner repairs
            _log.exception("after-commit work failed")


def _forget_rolled_back(session: Session, previous: Any) -> None:
    pending = session.info.get(_AFTER_COMMIT)
    if not pending:
        return
    if previous.parent is None:
        session.info.pop(_AFTER_COMMIT, None)
        return

    def inside(tx: Any) -> bool:
        while tx is not None:
            if tx is previous:
                return True
            tx = tx.parent
        return False

    for key in [k for k, (tx, _cb) in pending.items() if tx is not None and inside(tx)]:
        del pending[key]


_listening: list[bool] = []


def _listen() -> None:
    if not _listening:
        _listening.append(True)
        event.listen(Session, "after_commit", _run_after_commit)
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
