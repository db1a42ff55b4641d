"""core.db.after_commit: work that must wait for the commit, forgotten on rollback."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core.db import after_commit


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_runs_once_after_the_commit_in_order_and_a_key_registers_once(session):
    ran = []
    session.execute(text("SELECT 1"))
    after_commit(session, lambda: ran.append("a"))
    after_commit(session, lambda: ran.append("b"), key="k")
    after_commit(session, lambda: ran.append("b again"), key="k")
    assert ran == []
    session.commit()
    assert ran == ["a", "b"]
    session.execute(text("SELECT 1"))
    session.commit()
    assert ran == ["a", "b"]  # nothing left over for the next unit of work


def test_a_rollback_forgets_everything(session):
    ran = []
    session.execute(text("SELECT 1"))
    after_commit(session, lambda: ran.append("x"))
    session.rollback()
    session.execute(text("SELECT 1"))
    session.commit()
    assert ran == []


def test_a_savepoint_rollback_forgets_only_what_was_registered_inside_it(session):
    ran = []
    session.execute(text("SELECT 1"))
    after_commit(session, lambda: ran.append("outer"))
    nested = session.begin_nested()
    after_commit(session, lambda: ran.append("inner"))
    nested.rollback()
    kept = session.begin_nested()
    after_commit(session, lambda: ran.append("inner kept"))
    kept.commit()
    session.commit()
    assert ran == ["outer", "inner kept"]


def test_a_failing_callback_is_logged_and_the_others_still_run(session, caplog):
    ran = []
    session.execute(text("SELECT 1"))
    after_commit(session, lambda: 1 / 0)
    after_commit(session, lambda: ran.append("next"))
    with caplog.at_level(logging.ERROR, logger="zhizhi.db"):
        session.commit()
    assert ran == ["next"]
    assert "after-commit work failed" in caplog.text
