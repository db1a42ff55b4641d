"""Gate state written in the layout-1 keys (event-wide ``state``/``seen``/``info`` hashes)
survives the move to per-pass hashes: on fakeredis and, with ``REDIS_URL``, real Redis."""

from __future__ import annotations

from services.passes import hotlayout, hotstate
from tests.services.passes.conftest import EVENT
from tests.services.passes.test_hotstate import inside, scan


def old_layout(r, *, state: dict, seen: dict, info: dict, counts: dict) -> None:
    """What the layout-1 code left in Redis for a running event (its sets' sentinel was ``-``)."""
    r.delete(hotstate.key(EVENT, "flags"))
    for name in ("rev", "watch"):
        r.sadd(hotstate.key(EVENT, name), "-")
    for name, mapping in (("state", state), ("seen", seen), ("info", info), ("inside", counts)):
        if mapping:
            r.hset(hotstate.key(EVENT, name), mapping=mapping)


def synced(r) -> None:
    """What ``sync_event`` does without a database: move the state, then load the sets."""
    hotlayout.migrate(r, EVENT)
    r.sadd(hotstate.key(EVENT, "flags"), hotstate.SENTINEL)


def old_keys_left(r) -> list:
    return [n for n in hotlayout.OLD_KEYS + hotlayout.OLD_SETS if r.exists(hotstate.key(EVENT, n))]


def test_the_first_scan_after_the_deploy_asks_for_a_sync_and_nobody_inside_is_lost(r):
    old_layout(
        r,
        state={"1:1": "in", "2:1": "out", "3:1": "in", "3:2": "in"},
        seen={"1:1": 1_000, "2:1": 1_500, "3:1": 1_000, "3:2": 1_100, "3:3": 900},
        info={"1": "张*（110***）", "4": "李*"},
        counts={"1": 2, "2": 1},
    )
    assert scan(r, "n1", pass_id=1, at=2_000)[0] == "sync"
    synced(r)
    assert old_keys_left(r) == []
    reply = hotstate.run_scan(
        r, event_id=EVENT, nonce="n2", pass_id=1, verdict="", detail="", ring=1, direction="in",
        max_inside=None, gate_id=9, scanned_at_ms=2_000, max_ring=3, ttl=60,
    )  # fmt: skip
    assert reply == ["new", "already_inside|", "张*（110***）"]  # still inside, summary kept
    assert scan(r, "n3", pass_id=2, at=2_000) == ["new", "|"]  # was outside: may enter
    assert scan(r, "n4", pass_id=3, at=2_000, direction="out") == ["new", "|"]  # leaves rings 1-3
    assert inside(r) == {"1": 2, "2": 0}
    assert scan(r, "n5", pass_id=3, ring=2, at=2_100) == ["new", "|"]
    assert r.hget(hotstate.pass_key(EVENT, 4), "i").decode() == "李*"


def test_offline_uploads_after_the_deploy_compare_with_the_moved_scan_times(r):
    old_layout(r, state={"1:1": "in"}, seen={"1:1": 5_000}, info={}, counts={"1": 1})
    # An upload may arrive before any scan asked for the sync: it moves the state itself.
    assert hotstate.apply_offline(r, EVENT, 3, [(1, 1, "out", 4_000)]) == 0  # older: ignored
    assert old_keys_left(r) == []
    assert hotstate.apply_offline(r, EVENT, 3, [(1, 1, "out", 6_000)]) == 1
    assert inside(r) == {"1": 0}
    synced(r)
    assert scan(r, "n1", pass_id=1, at=7_000) == ["new", "|"]


def test_state_old_code_writes_after_the_move_merges_newer_wins_and_counts_once(r):
    old_layout(r, state={}, seen={}, info={}, counts={})
    synced(r)
    assert scan(r, "n1", pass_id=1, at=1_000) == ["new", "|"]
    assert scan(r, "n2", pass_id=2, at=1_000) == ["new", "|"]
    assert scan(r, "n3", pass_id=2, at=3_000, direction="out") == ["new", "|"]
    assert inside(r) == {"1": 1}
    # A worker still on the old code (rolling deploy) admits pass 1 again at 2_000 and
    # pass 2 at 2_500 (older than its exit at 3_000), and records an exit of pass 3 that
    # the new code never saw enter; each entry counted once more in ``inside``.
    r.hset(hotstate.key(EVENT, "state"), mapping={"1:1": "in", "2:1": "in"})
    r.hset(hotstate.key(EVENT, "seen"), mapping={"1:1": 2_000, "2:1": 2_500, "3:1": 2_000})
    r.hincrby(hotstate.key(EVENT, "inside"), "1", 2)
    assert hotlayout.migrate(r, EVENT) == 3
    assert old_keys_left(r) == []
    assert inside(r) == {"1": 1}  # pass 1 inside, passes 2 and 3 outside
    assert scan(r, "n4", pass_id=1, at=4_000) == ["new", "already_inside|"]
    assert scan(r, "n5", pass_id=2, at=4_000) == ["new", "|"]
    assert scan(r, "n6", pass_id=3, at=4_000) == ["new", "|"]
    assert hotlayout.migrate(r, EVENT) == 0  # nothing left: one EXISTS
