"""Redis state of the gate hot path, and the one Lua script a scan costs.

Per event (all keys share the hash tag ``{e<id>}``, so they live in one cluster slot):

``rev``    set of revoked pass ids (plus the sentinel ``-``: the set exists once synced)
``watch``  set of pass ids the gates refuse with ``watchlist`` (same sentinel)
``rv``     revocation version the ``rev`` set reflects
``state``  hash ``<pass>:<ring>`` -> ``in``/``out`` (anti-passback)
``inside`` hash ring -> people inside (occupancy limit, reason ``capacity``)
``info``   hash pass id -> masked holder summary shown to the guard
``seen``   hash ``<pass>:<ring>`` -> scan time (ms) of the last entry/exit that set ``state``,
           so offline scans uploaded later change the state only if they are newer
``n:<nonce>`` the first answer to a scan nonce (TTL)
``stream`` every scan, accepted or refused; the flusher moves it into PostgreSQL

Database changes that the gates must see (revocations, watched passes, summaries)
are published *after* the transaction commits (a rolled-back revocation must never
refuse a pass). A lost publication is repaired: a missing set makes the script answer
``sync`` (the caller reloads from the database), and the flusher resyncs when ``rv``
lags the database's revocation version.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable

from redis.exceptions import NoScriptError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from core.redislink import call as _call

log = logging.getLogger("zhizhi.passes")

SENTINEL = "-"
_PENDING = "passes_hotstate_pending"
_installed: dict[str, object] = {}
_by_engine: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def key(event_id: int, name: str) -> str:
    return f"pz:{{e{event_id}}}:{name}"


SCAN_LUA = """
local pid = ARGV[2]
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
  return {'sync'}
end
local revoked = 0
if pid ~= '' then revoked = redis.call('SISMEMBER', KEYS[2], pid) end
local info = ''
if pid ~= '' then info = redis.call('HGET', KEYS[7], pid) or '' end
local cached = redis.call('GET', KEYS[1])
if cached and revoked == 0 then
  return {'dup', cached, info}
end
local reason = ''
if revoked == 1 then
  reason = 'revoked'
elseif ARGV[3] ~= '' then
  reason = ARGV[3]
elseif redis.call('SISMEMBER', KEYS[3], pid) == 1 then
  reason = 'watchlist'
elseif ARGV[5] == 'in' then
  local field = pid .. ':' .. ARGV[4]
  if redis.call('HGET', KEYS[4], field) == 'in' then
    reason = 'already_inside'
  else
    local n = tonumber(redis.call('HGET', KEYS[5], ARGV[4]) or '0')
    if ARGV[6] ~= '' and n >= tonumber(ARGV[6]) then
      reason = 'capacity'
    else
      redis.call('HSET', KEYS[4], field, 'in')
      redis.call('HINCRBY', KEYS[5], ARGV[4], 1)
      redis.call('HSET', KEYS[8], field, ARGV[8])
    end
  end
else
  for r = tonumber(ARGV[4]), tonumber(ARGV[10]) do
    local f = pid .. ':' .. r
    if redis.call('HGET', KEYS[4], f) == 'in' then
      redis.call('HSET', KEYS[4], f, 'out')
      redis.call('HINCRBY', KEYS[5], tostring(r), -1)
    end
    redis.call('HSET', KEYS[8], f, ARGV[8])
  end
end
local answer = reason .. '|' .. ARGV[11]
redis.call('SET', KEYS[1], answer, 'EX', tonumber(ARGV[1]))
redis.call('XADD', KEYS[6], '*', 'n', ARGV[12], 'p', pid, 'g', ARGV[7], 'r', ARGV[4],
  'd', ARGV[5], 't', ARGV[8], 'x', reason, 'k', ARGV[11], 'o', ARGV[9])
return {'new', answer, info}
"""

#: Offline passages (already happened) applied to the inside/outside state: each one
#: only if it is at least as recent as the last scan that set that pass and ring, so
#: an upload never undoes a later online scan, and a re-upload changes nothing.
#: ARGV: max ring, then (pass id, ring, direction, scan time ms) per passage.
OFFLINE_LUA = """
local top_ring = tonumber(ARGV[1])
local changed = 0
for i = 2, #ARGV, 4 do
  local pid, ring, dir, ts = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], tonumber(ARGV[i + 3])
  local last = ring
  if dir == 'out' then last = top_ring end
  for r = ring, last do
    local f = pid .. ':' .. r
    if ts >= tonumber(redis.call('HGET', KEYS[3], f) or '-1') then
      redis.call('HSET', KEYS[3], f, ts)
      local now_in = redis.call('HGET', KEYS[1], f) == 'in'
      if dir == 'in' and not now_in then
        redis.call('HSET', KEYS[1], f, 'in')
        redis.call('HINCRBY', KEYS[2], tostring(r), 1)
        changed = changed + 1
      elseif dir == 'out' and now_in then
        redis.call('HSET', KEYS[1], f, 'out')
        redis.call('HINCRBY', KEYS[2], tostring(r), -1)
        changed = changed + 1
      end
    end
  end
end
return changed
"""

_SCAN_KEYS = ("rev", "watch", "state", "inside", "stream", "info", "seen")
SCAN_SHA = hashlib.sha1(SCAN_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


_EVENT_KEYS: dict[int, tuple[str, tuple[str, ...]]] = {}


def _event_keys(event_id: int) -> tuple[str, tuple[str, ...]]:
    keys = _EVENT_KEYS.get(event_id)
    if keys is None:
        tag = f"pz:{{e{event_id}}}:"
        keys = _EVENT_KEYS[event_id] = (tag + "n:", tuple(tag + name for name in _SCAN_KEYS))
    return keys


def run_scan(
    redis,
    *,
    event_id: int,
    nonce: str,
    pass_id: int | None,
    verdict: str,
    detail: str,
    ring: int,
    direction: str,
    max_inside: int | None,
    gate_id: int,
    scanned_at_ms: int,
    max_ring: int,
    ttl: int,
    offline: bool = False,
) -> list:
    """One EVALSHA (the script is loaded on first use or after a Redis restart)."""
    nonce_prefix, keys = _event_keys(event_id)
    command = (
        "EVALSHA", SCAN_SHA, 8, nonce_prefix + nonce, *keys,
        ttl, "" if pass_id is None else pass_id, verdict, ring, direction,
        "" if max_inside is None else max_inside, gate_id, scanned_at_ms, "1" if offline else "0",
        max_ring, detail, nonce,
    )  # fmt: skip
    try:
        reply = _call(redis, command)
    except NoScriptError:
        redis.script_load(SCAN_LUA)
        reply = _call(redis, command)
    return [x.decode() if isinstance(x, bytes) else x for x in reply]


def apply_offline(redis, event_id: int, max_ring: int, passages: list[tuple[int, int, str, int]]) -> int:
    """Apply offline passages ``(pass id, ring, direction, scan time ms)``, oldest first,
    to the inside/outside state (see ``OFFLINE_LUA``); returns how many states changed."""
    changed = 0
    names = (key(event_id, "state"), key(event_id, "inside"), key(event_id, "seen"))
    ordered = sorted(passages, key=lambda p: p[3])
    for i in range(0, len(ordered), 500):  # bounded work per script call
        args = [x for p in ordered[i : i + 500] for x in p]
        changed += int(redis.eval(OFFLINE_LUA, 3, *names, max_ring, *args))
    return changed


# --- publishing after commit ----------------------------------------------------


def install(redis, engine=None) -> None:
    """Route after-commit publications of sessions on ``engine`` to ``redis`` (the app's
    client). Several apps in one process (tests, tools) each keep their own Redis."""
    _installed["redis"] = redis
    if engine is not None:
        _by_engine[engine] = redis
    if not _installed.get("listening"):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_soft_rollback", _after_soft_rollback)
        _installed["listening"] = True


def _after_commit(session: Session) -> None:
    callbacks = session.info.pop(_PENDING, [])
    if not callbacks:
        return
    bind = session.get_bind()
    redis = _by_engine.get(getattr(bind, "engine", bind)) or _installed.get("redis")
    if redis is None:
        return
    for _tx, callback in callbacks:
        try:
            callback(redis)
        except Exception:
            log.exception("publishing gate state failed; the flusher will resync")


def _after_soft_rollback(session: Session, previous_transaction) -> None:
    """Forget publications made inside the transaction (or savepoint) rolled back."""
    pending = session.info.get(_PENDING)
    if not pending:
        return

    def inside(tx) -> bool:
        if tx is None:
            return previous_transaction.parent is None
        while tx is not None:
            if tx is previous_transaction:
                return True
            tx = tx.parent
        return False

    session.info[_PENDING] = [(tx, cb) for tx, cb in pending if not inside(tx)]


def on_commit(session: Session, callback: Callable) -> None:
    """Run ``callback(redis)`` once the session's outermost transaction commits."""
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((tx, callback))


def after_commit_revoked(session: Session, event_id: int, pass_id: int, version: int) -> None:
    def publish(redis) -> None:
        if redis.exists(key(event_id, "rev")):
            pipe = redis.pipeline()
            pipe.sadd(key(event_id, "rev"), str(pass_id))
            pipe.set(key(event_id, "rv"), version)
            pipe.execute()

    on_commit(session, publish)


def after_commit_replace_watched(session: Session, event_id: int, pass_ids: Iterable[int]) -> None:
    members = [SENTINEL, *(str(p) for p in pass_ids)]

    def publish(redis) -> None:
        _replace_set(redis, key(event_id, "watch"), members)

    on_commit(session, publish)


def after_commit_offline(
    session: Session, event_id: int, max_ring: int, passages: list[tuple[int, int, str, int]]
) -> None:
    """Apply uploaded offline passages to the gate state once they are committed."""
    on_commit(session, lambda redis: apply_offline(redis, event_id, max_ring, passages))


def after_commit_info(session: Session, event_id: int, pass_id: int, summary: str) -> None:
    on_commit(session, lambda redis: redis.hset(key(event_id, "info"), str(pass_id), summary))


def _replace_set(redis, name: str, members: list[str]) -> None:
    tmp = name + ":tmp"
    pipe = redis.pipeline()
    pipe.delete(tmp)
    pipe.sadd(tmp, *members)
    pipe.rename(tmp, name)
    pipe.execute()


def sync_event(redis, session: Session, event_id: int, now) -> int:
    """Reload the revoked and watched sets of an event from the database; returns the
    revocation version published."""
    from sqlalchemy import select

    from models.passes import Event, Revocation
    from services.passes.lists import watched_pass_ids

    version = session.scalar(select(Event.revocation_version).where(Event.id == event_id)) or 0
    revoked = [
        str(p) for p in session.scalars(select(Revocation.pass_id).where(Revocation.event_id == event_id))
    ]
    _replace_set(redis, key(event_id, "rev"), [SENTINEL, *revoked])
    redis.set(key(event_id, "rv"), version)
    _replace_set(
        redis, key(event_id, "watch"), [SENTINEL, *(str(p) for p in watched_pass_ids(session, event_id, now))]
    )
    return version
