"""The gate's Lua scripts on the in-process store (fakeredis runs the same Lua) and, when
``REDIS_URL`` is set, on the real server through the hot path's raw connection."""

from __future__ import annotations

import fakeredis
import pytest

from core import redislink as scanlink
from services.passes import hotstate
from tests.services.passes.conftest import EVENT


def scan(r, nonce, pass_id=1, *, verdict="", direction="in", ring=1, max_inside=None, at=1):
    return hotstate.run_scan(
        r, event_id=EVENT, nonce=nonce, pass_id=pass_id, verdict=verdict, detail="", ring=ring,
        direction=direction, max_inside=max_inside, gate_id=9, scanned_at_ms=at, max_ring=3, ttl=60,
    )[:2]  # fmt: skip


def inside(r) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r.hgetall(hotstate.key(EVENT, "inside")).items()}


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
    r.sadd(hotstate.key(EVENT, "flags"), "r1")
    assert scan(r, "n1") == ["new", "revoked|"]
    assert scan(r, "n2", verdict="expired") == ["new", "revoked|"]


def test_watchlist_after_python_verdicts_and_capacity_at_the_ring(r):
    r.sadd(hotstate.key(EVENT, "flags"), "w2")
    assert scan(r, "n1", pass_id=2, verdict="wrong_zone") == ["new", "wrong_zone|"]
    assert scan(r, "n2", pass_id=2) == ["new", "watchlist|"]
    assert scan(r, "n3", pass_id=3, max_inside=1) == ["new", "|"]
    assert scan(r, "n4", pass_id=4, max_inside=1) == ["new", "capacity|"]


def test_a_new_watch_list_replaces_only_the_watched_flags_of_a_loaded_set(r):
    flags = hotstate.key(EVENT, "flags")
    r.sadd(flags, "r1", "w2", "w3")
    hotstate.replace_watched(r, EVENT, [3, 4], [5])
    assert {m.decode() for m in r.smembers(flags)} == {hotstate.SENTINEL, "r1", "w3", "w4", "a5"}
    assert scan(r, "n1", pass_id=1) == ["new", "revoked|"]
    assert scan(r, "n2", pass_id=2) == ["new", "|"]
    assert scan(r, "n4", pass_id=4) == ["new", "watchlist|"]
    hotstate.replace_watched(r, EVENT, [4], [])
    assert {m.decode() for m in r.smembers(flags)} == {hotstate.SENTINEL, "r1", "w4"}
    r.delete(flags)
    hotstate.replace_watched(r, EVENT, [5])  # not loaded: the sync loads it all
    assert not r.exists(flags)


def test_a_republication_yields_to_one_that_came_in_since_it_read_the_database(r):
    flags = hotstate.key(EVENT, "flags")
    seen = hotstate.watch_version(r, EVENT)
    assert hotstate.replace_watched(r, EVENT, [7])  # an officer's change, published after commit
    assert not hotstate.replace_watched(r, EVENT, [], expect=seen)  # computed before it: stale
    assert "w7" in {m.decode() for m in r.smembers(flags)}
    assert hotstate.replace_watched(r, EVENT, [], expect=hotstate.watch_version(r, EVENT))
    assert "w7" not in {m.decode() for m in r.smembers(flags)}


def test_an_alert_flag_lets_the_pass_through_and_marks_the_new_scan(r):
    r.sadd(hotstate.key(EVENT, "flags"), "a2")
    assert scan(r, "n1", pass_id=2) == ["alert", "|"]
    assert scan(r, "n1", pass_id=2) == ["dup", "|"]  # a replay raises nothing again
    assert scan(r, "n2", pass_id=2) == ["alert", "already_inside|"]
    assert scan(r, "n3", pass_id=2, direction="out") == ["alert", "|"]
    r.sadd(hotstate.key(EVENT, "flags"), "r2")
    assert scan(r, "n4", pass_id=2) == ["new", "revoked|"]
    assert inside(r) == {"1": 0}


def test_script_is_reloaded_after_a_flush(r):
    assert scan(r, "n1")[0] == "new"
    r.script_flush()
    assert scan(r, "n2", pass_id=2)[0] == "new"


def test_a_dropped_scan_connection_is_replaced(r):
    import socket

    assert scan(r, "n1")[0] == "new"
    link = scanlink._local.link
    link.conn.disconnect()  # the client noticed (e.g. a pool reset): reconnects on the slow path
    assert scan(r, "n2", pass_id=2)[0] == "new"
    assert scanlink._local.link is link
    if link.sock is not None:  # real Redis: back on the raw path, then its socket dies
        assert link.sock is link.conn._sock and link.sock.gettimeout() is None
        link.sock.shutdown(socket.SHUT_RDWR)
        assert scan(r, "n3", pass_id=3)[0] == "new"
        assert scanlink._local.link is None  # dropped; the next scan opens a new link
    assert scan(r, "n4", pass_id=4) == ["new", "|"]
    assert r.xlen(hotstate.key(EVENT, "stream")) == (4 if link.sock is not None else 3)


def test_exit_at_an_outer_ring_also_leaves_the_inner_rings(r):
    assert scan(r, "n1", ring=1) == ["new", "|"]
    assert scan(r, "n2", ring=3) == ["new", "|"]
    assert scan(r, "n3", ring=3) == ["new", "already_inside|"]  # no exit yet
    assert scan(r, "n4", ring=1, direction="out") == ["new", "|"]
    assert inside(r) == {"1": 0, "3": 0}
    assert scan(r, "n5", ring=3) == ["new", "|"]  # re-entry after the exit
    assert scan(r, "n6", ring=1) == ["new", "|"]


def test_an_exit_frees_capacity_once_even_when_replayed(r):
    assert scan(r, "n1", pass_id=1, max_inside=1) == ["new", "|"]
    assert scan(r, "n2", pass_id=2, max_inside=1) == ["new", "capacity|"]
    assert scan(r, "n3", pass_id=1, direction="out") == ["new", "|"]
    assert scan(r, "n3", pass_id=1, direction="out") == ["dup", "|"]
    assert scan(r, "n4", pass_id=1, direction="out") == ["new", "|"]  # an exit while outside
    assert inside(r) == {"1": 0}
    assert scan(r, "n5", pass_id=2, max_inside=1) == ["new", "|"]
    assert scan(r, "n6", pass_id=3, max_inside=1) == ["new", "capacity|"]
    assert scan(r, "n7", pass_id=1, max_inside=1) == ["new", "capacity|"]  # a refusal changes nothing
    assert inside(r) == {"1": 1}


def test_offline_passages_apply_only_when_newer_than_the_last_scan(r):
    assert scan(r, "n1", pass_id=1, at=1_000) == ["new", "|"]
    # Offline, later: pass 1 left, pass 2 came in; an older offline entry of pass 3 too.
    moves = [(1, 1, "out", 2_000), (2, 1, "in", 2_500), (3, 1, "in", 500)]
    assert hotstate.apply_offline(r, EVENT, 3, moves) == 3
    assert inside(r) == {"1": 2}
    assert scan(r, "n2", pass_id=1, at=3_000) == ["new", "|"]  # out since 2_000: may re-enter
    assert scan(r, "n3", pass_id=2, at=3_000) == ["new", "already_inside|"]
    assert scan(r, "n4", pass_id=3, at=3_000, direction="out") == ["new", "|"]
    # An offline entry older than that online exit, uploaded late, does not put it back.
    assert hotstate.apply_offline(r, EVENT, 3, [(3, 1, "in", 2_900)]) == 0
    assert scan(r, "n5", pass_id=3, at=3_100) == ["new", "|"]
    # Uploading the same batch again changes nothing.
    assert hotstate.apply_offline(r, EVENT, 3, moves) == 0
    assert inside(r) == {"1": 3}


def test_offline_exit_at_an_outer_ring_clears_inner_rings_it_is_newer_than(r):
    assert scan(r, "n1", pass_id=1, ring=3, at=1_000) == ["new", "|"]
    assert scan(r, "n2", pass_id=1, ring=2, at=3_000) == ["new", "|"]
    assert hotstate.apply_offline(r, EVENT, 3, [(1, 1, "out", 2_000)]) == 1  # ring 3 only
    assert scan(r, "n3", pass_id=1, ring=3, at=4_000) == ["new", "|"]
    assert scan(r, "n4", pass_id=1, ring=2, at=4_000) == ["new", "already_inside|"]


def test_the_scan_link_keeps_its_timeout_in_the_kernel():
    import socket
    import time

    a, b = socket.socketpair()
    a.settimeout(0.2)
    scanlink._kernel_timeout(a)
    assert a.gettimeout() is None  # blocking: no poll() before each send and receive
    t = time.monotonic()
    with pytest.raises(BlockingIOError):  # ... and still bounded: EAGAIN after the timeout
        a.recv(10)
    assert 0.15 < time.monotonic() - t < 2
    b.sendall(b"+OK\r\n")
    assert a.recv(10) == b"+OK\r\n"
    a.close()
    b.close()
