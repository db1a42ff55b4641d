"""The gate's Lua script on the in-process store (fakeredis runs the same Lua)."""

from __future__ import annotations

import fakeredis
import pytest

from services.passes import hotstate

EVENT = 5


@pytest.fixture
def r():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.sadd(hotstate.key(EVENT, "rev"), hotstate.SENTINEL)
    client.sadd(hotstate.key(EVENT, "watch"), hotstate.SENTINEL)
    return client


def scan(r, nonce, pass_id=1, *, verdict="", direction="in", ring=1, max_inside=None):
    return hotstate.run_scan(
        r, event_id=EVENT, nonce=nonce, pass_id=pass_id, verdict=verdict, detail="", ring=ring,
        direction=direction, max_inside=max_inside, gate_id=9, scanned_at_ms=1, max_ring=3, ttl=60,
    )[:2]  # fmt: skip


def test_unsynced_state_asks_for_a_sync():
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    assert scan(client, "n1")[0] == "sync"


def test_anti_passback_exit_reentry_and_nonce_replay(r):
    assert scan(r, "n1") == ["new", "|"]
    assert scan(r, "n1") == ["dup", "|"]
    assert scan(r, "n2") == ["new", "already_inside|"]
    assert scan(r, "n3", direction="out") == ["new", "|"]
    assert scan(r, "n4") == ["new", "|"]
    assert r.xlen(hotstate.key(EVENT, "stream")) == 4  # the replay logged nothing


def test_revocation_beats_a_cached_answer_and_any_later_verdict(r):
    assert scan(r, "n1") == ["new", "|"]
    r.sadd(hotstate.key(EVENT, "rev"), "1")
    assert scan(r, "n1") == ["new", "revoked|"]
    assert scan(r, "n2", verdict="expired") == ["new", "revoked|"]


def test_watchlist_after_python_verdicts_and_capacity_at_the_ring(r):
    r.sadd(hotstate.key(EVENT, "watch"), "2")
    assert scan(r, "n1", pass_id=2, verdict="wrong_zone") == ["new", "wrong_zone|"]
    assert scan(r, "n2", pass_id=2) == ["new", "watchlist|"]
    assert scan(r, "n3", pass_id=3, max_inside=1) == ["new", "|"]
    assert scan(r, "n4", pass_id=4, max_inside=1) == ["new", "capacity|"]


def test_script_is_reloaded_after_a_flush(r):
    assert scan(r, "n1")[0] == "new"
    r.script_flush()
    assert scan(r, "n2", pass_id=2)[0] == "new"


def test_a_dropped_scan_connection_is_replaced(r):
    assert scan(r, "n1")[0] == "new"
    conn = getattr(hotstate._local, "conn", None)
    if conn is not None:
        conn.disconnect()
    assert scan(r, "n2", pass_id=2)[0] == "new"
