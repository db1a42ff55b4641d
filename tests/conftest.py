"""Fixtures: app → database → client. One database per test session (PostgreSQL when
DATABASE_URL says so, else SQLite); each test runs inside a transaction that is rolled
back (``db``), or, for tests that need real commits seen by other processes, against
committed data that is truncated afterwards (``committed_db``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

pytest_plugins = ["tests.fakes.fixtures"]

REQUIRE_SERVICES = os.environ.get("ZHIZHI_TEST_REQUIRE_SERVICES") == "1"


def _pg_server_url(url: str) -> tuple[str, str]:
    base, _, _db = url.rpartition("/")
    return base, _db


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        if REQUIRE_SERVICES:
            pytest.exit("ZHIZHI_TEST_REQUIRE_SERVICES=1 but DATABASE_URL is not PostgreSQL", 2)
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    base, admin_db = _pg_server_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"zz_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(f"{base}/{admin_db}", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def test_env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    instance: Path = tmp_path_factory.mktemp("instance")
    env = {
        "ZHIZHI_ENV": "testing",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "QUEUE_PREFIX": f"t{os.getpid()}:",
        "AUTH_CACHE_SECONDS": "0",
        "WECHAT_TOKEN": "zhizhitoken",
        "WECHAT_APP_ID": "wx0000000000000001",
        "WECHAT_APP_SECRET": "oa-secret",
        "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "WECHAT_MP_APP_ID": "wx0000000000000002",
        "WECHAT_MP_APP_SECRET": "mp-secret",
        "DINGTALK_APP_KEY": "dingappkey",
        "DINGTALK_APP_SECRET": "dingappsecret",
        "DINGTALK_AGENT_ID": "123456",
    }
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        env["REDIS_URL"] = redis_url
    elif REQUIRE_SERVICES:
        pytest.exit("ZHIZHI_TEST_REQUIRE_SERVICES=1 but REDIS_URL is not set", 2)
    else:
        env["REDIS_URL"] = ""
    return env


@pytest.fixture(scope="session")
def app(test_env: dict[str, str]):
    from core.app import create_app
    from core.migrate import upgrade
    from jobs.context import set_app

    application = create_app(test_env)
    upgrade(test_env["DATABASE_URL"])
    set_app(application)
    yield application
    application.extensions["zhizhi"].db.dispose()


@pytest.fixture(autouse=True)
def _fresh_state(request: pytest.FixtureRequest) -> Iterator[None]:
    if "app" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    from core.auth import token_cache

    token_cache.clear()
    application.extensions["zhizhi"].redis.flushdb()
    yield


@pytest.fixture
def db(app):
    """Rollback-per-test: every session the app opens joins one outer transaction."""
    ext = app.extensions["zhizhi"]
    conn = ext.db.engine.connect()
    outer = conn.begin()
    original = ext.db.sessionmaker
    ext.db.sessionmaker = sessionmaker(
        bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    session = ext.db.sessionmaker()
    try:
        yield session
    finally:
        session.close()
        ext.db.sessionmaker = original
        outer.rollback()
        conn.close()


@pytest.fixture
def committed_db(app):
    """Real commits (for RQ workers in other processes); tables emptied afterwards."""
    import models

    ext = app.extensions["zhizhi"]
    session = ext.db.sessionmaker()
    try:
        yield session
    finally:
        session.close()
        tables = [t.name for t in reversed(models.Base.metadata.sorted_tables)]
        with ext.db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
                )
            else:
                for t in tables:
                    conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def run_jobs(app, db):
    """Run every pending outbox row in-process through the real runner (same code RQ runs)."""
    from sqlalchemy import select

    from jobs.runner import run_item
    from models.platform import OutboxItem, OutboxStatus

    def run(rounds: int = 5) -> list[tuple[int, str]]:
        outcomes: list[tuple[int, str]] = []
        for _ in range(rounds):
            ids = list(
                db.scalars(
                    select(OutboxItem.id)
                    .where(OutboxItem.status == OutboxStatus.pending)
                    .order_by(OutboxItem.id)
                )
            )
            if not ids:
                break
            outcomes.extend((i, run_item(app, i)) for i in ids)
        return outcomes

    return run


@pytest.fixture
def platforms(app, fake_wechat, fake_dingtalk, monkeypatch):
    """Point the app's WeChat (both apps) and DingTalk clients at the fake servers."""
    settings = app.extensions["zhizhi"].settings
    wechat = dict(
        settings.wechat,
        api_base=fake_wechat.base_url,
        app_id=fake_wechat.app_id,
        app_secret=fake_wechat.secret,
        mp_app_id=fake_wechat.app_id,
        mp_app_secret=fake_wechat.secret,
    )
    dingtalk = dict(
        settings.dingtalk,
        api_base=fake_dingtalk.base_url,
        app_key=fake_dingtalk.app_key,
        app_secret=fake_dingtalk.app_secret,
        agent_id=str(fake_dingtalk.agent_id),
    )
    monkeypatch.setattr(settings, "wechat", wechat)
    monkeypatch.setattr(settings, "dingtalk", dingtalk)
    return fake_wechat, fake_dingtalk


@pytest.fixture(scope="session", autouse=True)
def suite_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log line the suite writes, through the same PII filter production uses;
    the personal-data audit (run last) reads it."""
    import logging

    from core.pii import PIIScrubbingFilter

    path = tmp_path_factory.mktemp("logs") / "suite.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PIIScrubbingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    yield path
    root.removeHandler(handler)
    handler.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``run_last`` (the personal-data audit) run after everything else."""
    last = [i for i in items if i.get_closest_marker("run_last")]
    items[:] = [i for i in items if not i.get_closest_marker("run_last")] + last
