"""Redis state of the gate hot path, and the one Lua script a scan costs.

Per event (all keys share the hash tag ``{e<id>}``, so they live in one cluster slot):

``flags``  set of ``r<pass>`` (revoked), ``w<pass>`` (refused with ``watchlist``: an exact
           ``reject`` watch entry) and ``a<pass>`` (let through, officers alerted: an exact
           ``alert`` entry of an untrusted subject), plus the layout sentinel: the set is
           complete once it holds the sentinel
``rv``     revocation version the ``flags`` set reflects
``wv``     counts publications of the watched passes (the flusher's republication of
           expired entries yields to a newer one)
``p:<pass>`` hash, one per pass: ``i`` the masked holder summary shown to the guard, and
           per ring ``<ring>`` -> ``I<ms>`` (inside) or ``O<ms>`` (outside): the
           anti-passback state with the scan time of the scan that set it, so offline
           scans uploaded later change the state only if they are newer
``inside`` hash ring -> people inside (occupancy limit, reason ``capacity``)
``n:<nonce>`` the first answer to a scan nonce (TTL)
``stream`` every scan, accepted or refused, as one packed field (see :class:`GateScan`);
           the flusher moves it into PostgreSQL

Layout 1 kept the pass state in event-wide hashes (``state``/``seen``/``info`` keyed
``<pass>:<ring>``) and two sets ``rev``/``watch``; :mod:`services.passes.hotlayout`
moves the state into the pass hashes when an event syncs. The sentinel names the
layout, so the first scan after a deploy that changed it asks for that sync.

Database changes that the gates must see (revocations, watched passes, summaries)
are published *after* the transaction commits (a rolled-back revocation must never
refuse a pass). A lost publication is repaired: a ``flags`` set without the sentinel
makes the script answer ``sync`` (the caller reloads from the database), and the
flusher resyncs when ``rv`` lags the database's revocation version.

Each ``redis.call`` in the script costs Redis a few microseconds once its caches have
gone cold between scans, so a scan makes as few as it can: one SMISMEMBER (revoked,
watched, alerted, loaded), one HMGET, the nonce claimed with ``SET NX GET``, and on a passage
one HSET, one HINCRBY (per ring left, on exit) and one XADD. Needs Redis 7.0 or later
(``SET`` with both ``NX`` and ``GET``).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable

from redis.exceptions import NoScriptError
from sqlalchemy.orm import Session

from core.db import after_commit
from core.redislink import call as _call

log = logging.getLogger("zhizhi.passes")

#: Member of the ``flags`` set once it is loaded; names the key layout.
SENTINEL = "-v2"
_installed: dict[str, object] = {}
_by_engine: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def key(event_id: int, name: str) -> str:
    return f"pz:{{e{event_id}}}:{name}"


def pass_key(event_id: int, pass_id: int | str) -> str:
    return f"pz:{{e{event_id}}}:p:{pass_id}"


#: KEYS: nonce, flags, the pass hash, inside, stream.
#: ARGV: ttl, pass id ('' when the token did not verify), verdict and detail of the checks
#: before revocation, direction, occupancy limit ('' none), scan time ms, the stream entry
#: without its reason, then the rings the scan touches (the gate's, and on exit every
#: inner ring too). Replies one string: ``S`` (load the flags first), or ``N`` (a new
#: scan), ``A`` (a new scan of a pass whose holder officers are to be alerted about) or
#: ``D`` (a replayed nonce), then ``<reason>|<detail>`` + newline + holder summary.
#: Everything is decided from reads first; the nonce is then claimed, and only a new
#: scan writes (a replay of a revoked pass answers, and is logged as, ``revoked``).
SCAN_LUA = """
local pid, revoked, info, st, write, new = ARGV[2], false, '', nil, nil, 'N'
local reason = ARGV[3]
if pid ~= '' then
  local f = redis.call('SMISMEMBER', KEYS[2], 'r' .. pid, 'w' .. pid, 'a' .. pid, '@SENTINEL@')
  if f[4] == 0 then return 'S' end
  revoked = f[1] == 1
  if f[3] == 1 and not revoked then new = 'A' end
  st = redis.call('HMGET', KEYS[3], 'i', unpack(ARGV, 9))
  info = st[1] or ''
  if revoked then
    reason = 'revoked'
  elseif reason == '' then
    if f[2] == 1 then
      reason = 'watchlist'
    elseif ARGV[5] == 'out' then
      write = 'out'
    elseif st[2] and string.byte(st[2]) == 73 then
      reason = 'already_inside'
    elseif ARGV[6] ~= '' and tonumber(redis.call('HGET', KEYS[4], ARGV[9]) or '0') >= tonumber(ARGV[6]) then
      reason = 'capacity'
    else
      write = 'in'
    end
  end
end
local answer = reason .. '|' .. ARGV[4]
local cached = redis.call('SET', KEYS[1], answer, 'NX', 'GET', 'EX', ARGV[1])
if cached then
  if not revoked then return 'D' .. cached .. '\\n' .. info end
  redis.call('SET', KEYS[1], answer, 'EX', ARGV[1])
end
if write == 'in' then
  redis.call('HSET', KEYS[3], ARGV[9], 'I' .. ARGV[7])
  redis.call('HINCRBY', KEYS[4], ARGV[9], 1)
elseif write == 'out' then
  local out, fields = 'O' .. ARGV[7], {}
  for i = 9, #ARGV do
    local v = st[i - 7]
    if v and string.byte(v) == 73 then redis.call('HINCRBY', KEYS[4], ARGV[i], -1) end
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = out
  end
  redis.call('HSET', KEYS[3], unpack(fields))
end
redis.call('XADD', KEYS[5], '*', 'e', ARGV[8] .. reason)
return new .. answer .. '\\n' .. info
""".replace("@SENTINEL@", SENTINEL)

#: Offline passages (already happened) applied to the inside/outside state: each one
#: only if it is at least as recent as the last scan that set that pass and ring, so
#: an upload never undoes a later online scan, and a re-upload changes nothing.
#: KEYS: inside, then the pass hash of each passage; ARGV: max ring, then
#: (ring, direction, scan time ms) per passage.
OFFLINE_LUA = """
local top_ring = tonumber(ARGV[1])
local changed = 0
for k = 2, #KEYS do
  local i = 3 * k - 4
  local ring, dir, ts = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local last = ring
  if dir == 'out' then last = top_ring end
  for r = ring, last do
    local v = redis.call('HGET', KEYS[k], r)
    if not v or ts >= tonumber(string.sub(v, 2)) then
      local now_in = v ~= false and string.byte(v) == 73
      if dir == 'in' then
        redis.call('HSET', KEYS[k], r, 'I' .. ARGV[i + 2])
        if not now_in then
          redis.call('HINCRBY', KEYS[1], tostring(r), 1)
          changed = changed + 1
        end
      else
        redis.call('HSET', KEYS[k], r, 'O' .. ARGV[i + 2])
        if now_in then
          redis.call('HINCRBY', KEYS[1], tostring(r), -1)
          changed = changed + 1
        end
      end
    end
  end
end
return changed
"""

SCAN_SHA = hashlib.sha1(SCAN_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


class GateScan:
    """The parts of a gate's scan command that do not change between scans, built once
    per gate context: keys, the rings a scan touches per direction, occupancy limit, TTL.

    The stream entry is one field ``e``: ``nonce|pass|gate|ring|direction|ms|offline|reason``
    (the script appends the reason; the flusher splits it from the right, so only the
    nonce, which comes first, could ever hold a ``|``).
    """

    __slots__ = ("_entry", "_flags", "_inside", "_limit", "_nonce", "_pass", "_rings", "_stream", "_ttl")

    def __init__(
        self, event_id: int, gate_id: int, ring: int, max_ring: int, max_inside: int | None, ttl: int
    ) -> None:
        tag = f"pz:{{e{event_id}}}:"
        self._nonce, self._pass, self._flags = tag + "n:", tag + "p:", tag + "flags"
        self._inside, self._stream, self._ttl = tag + "inside", tag + "stream", str(ttl)
        self._limit = "" if max_inside is None else str(max_inside)
        self._rings = {"in": (str(ring),), "out": tuple(str(r) for r in range(ring, max_ring + 1))}
        self._entry = f"|{gate_id}|{ring}|"

    def command(self, nonce: str, pid: str, verdict: str, detail: str, direction: str, ts_ms: int) -> tuple:
        ts = str(ts_ms)
        return (
            "EVALSHA", SCAN_SHA, 5, self._nonce + nonce, self._flags, self._pass + pid, self._inside,
            self._stream, self._ttl, pid, verdict, detail, direction, self._limit, ts,
            nonce + "|" + pid + self._entry + direction + "|" + ts + "|0|", *self._rings[direction],
        )  # fmt: skip

    def run(self, redis, nonce: str, pass_id: int | None, verdict: str, detail: str, direction: str, ts: int):
        """One EVALSHA (the script is loaded on first use or after a Redis restart).
        Replies bytes, as ``SCAN_LUA`` describes."""
        pid = "" if pass_id is None else str(pass_id)
        command = self.command(nonce, pid, verdict, detail, direction, ts)
        try:
            return _call(redis, command)
        except NoScriptError:
            redis.script_load(SCAN_LUA)
            return _call(redis, command)


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
) -> list[str]:
    """:meth:`GateScan.run` for one scan, the reply as ``[status, answer, summary]`` with
    status ``new``, ``alert`` (new, officers to be alerted), ``dup`` or ``sync`` (tools
    and tests)."""
    plan = GateScan(event_id, gate_id, ring, max_ring, max_inside, ttl)
    reply = plan.run(redis, nonce, pass_id, verdict, detail, direction, scanned_at_ms)
    reply = reply.decode() if isinstance(reply, bytes) else reply
    status = {"N": "new", "A": "alert", "D": "dup", "S": "sync"}[reply[0]]
    return [status] if status == "sync" else [status, *reply[1:].split("\n", 1)]


def apply_offline(redis, event_id: int, max_ring: int, passages: list[tuple[int, int, str, int]]) -> int:
    """Apply offline passages ``(pass id, ring, direction, scan time ms)``, oldest first,
    to the inside/outside state (see ``OFFLINE_LUA``); returns how many states changed.
    State still in the layout-1 hashes is moved first, so it is compared, not lost."""
    from services.passes.hotlayout import migrate

    migrate(redis, event_id)
    changed = 0
    inside = key(event_id, "inside")
    ordered = sorted(passages, key=lambda p: p[3])
    for i in range(0, len(ordered), 500):  # bounded work per script call
        chunk = ordered[i : i + 500]
        keys = [pass_key(event_id, p[0]) for p in chunk]
        args = [x for p in chunk for x in p[1:]]
        changed += int(redis.eval(OFFLINE_LUA, 1 + len(keys), inside, *keys, max_ring, *args))
    return changed


# --- publishing after commit ----------------------------------------------------


def install(redis, engine=None) -> None:
    """Route after-commit publications of sessions on ``engine`` to ``redis`` (the app's
    client). Several apps in one process (tests, tools) each keep their own Redis."""
    _installed["redis"] = redis
    if engine is not None:
        _by_engine[engine] = redis


def on_commit(session: Session, callback: Callable) -> None:
    """Run ``callback(redis)`` once the session's outermost transaction commits (forgotten
    if the transaction or savepoint it was registered in rolls back; core.db.after_commit)."""

    def publish() -> None:
        bind = session.get_bind()
        redis = _by_engine.get(getattr(bind, "engine", bind)) or _installed.get("redis")
        if redis is None:
            return
        try:
            callback(redis)
        except Exception:
            log.exception("publishing gate state failed; the flusher will resync")

    after_commit(session, publish)


def after_commit_revoked(session: Session, event_id: int, pass_id: int, version: int) -> None:
    def publish(redis) -> None:
        if redis.exists(key(event_id, "flags")):
            pipe = redis.pipeline()
            pipe.sadd(key(event_id, "flags"), f"r{pass_id}")
            pipe.set(key(event_id, "rv"), version)
            pipe.execute()

    on_commit(session, publish)


#: KEYS: flags, wv (the watch publication counter). ARGV: the counter value the caller
#: read before computing the members ('' = publish regardless), then the new ``w``/``a``
#: members. Replaces the ``w`` and ``a`` members of a loaded set (an unloaded one gets
#: them at its sync), unless another publication came in since the caller read ``wv``.
WATCHED_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local t = string.sub(m, 1, 1)
  if t == 'w' or t == 'a' then redis.call('SREM', KEYS[1], m) end
end
for i = 2, #ARGV do redis.call('SADD', KEYS[1], ARGV[i]) end
redis.call('INCR', KEYS[2])
return 1
"""


def watch_members(refused: Iterable[int], alerted: Iterable[int] = ()) -> list[str]:
    return [f"w{p}" for p in refused] + [f"a{p}" for p in alerted]


def watch_version(redis, event_id: int) -> str:
    """The watch publication counter, to pass to :func:`replace_watched` as ``expect``."""
    value = redis.get(key(event_id, "wv"))
    return value.decode() if value is not None else "0"


def replace_watched(
    redis, event_id: int, refused: Iterable[int], alerted: Iterable[int] = (), *, expect: str | None = None
) -> bool:
    """Publish the watched passes; with ``expect``, only if no other publication (or sync)
    came in since that counter value was read. Returns whether it published."""
    members = watch_members(refused, alerted)
    argv = ("" if expect is None else expect, *members)
    return bool(redis.eval(WATCHED_LUA, 2, key(event_id, "flags"), key(event_id, "wv"), *argv))


def after_commit_replace_watched(
    session: Session, event_id: int, refused: Iterable[int], alerted: Iterable[int] = ()
) -> None:
    """Publish the watched passes once the change commits."""
    refused, alerted = list(refused), list(alerted)
    on_commit(session, lambda redis: replace_watched(redis, event_id, refused, alerted))


def after_commit_offline(
    session: Session, event_id: int, max_ring: int, passages: list[tuple[int, int, str, int]]
) -> None:
    """Apply uploaded offline passages to the gate state once they are committed."""
    on_commit(session, lambda redis: apply_offline(redis, event_id, max_ring, passages))


def after_commit_info(session: Session, event_id: int, pass_id: int, summary: str) -> None:
    on_commit(session, lambda redis: redis.hset(pass_key(event_id, pass_id), "i", summary))


def _replace_set(redis, name: str, members: list[str]) -> None:
    tmp = name + ":tmp"
    pipe = redis.pipeline()
    pipe.delete(tmp)
    pipe.sadd(tmp, *members)
    pipe.rename(tmp, name)
    pipe.execute()


def sync_event(redis, session: Session, event_id: int, now) -> int:
    """Reload the revoked and watched passes of an event from the database; returns the
    revocation version published. Gate state left in an older key layout is moved
    first (the set's sentinel then tells the scan script it may run)."""
    from sqlalchemy import select

    from models.passes import Event, Revocation
    from services.passes.hotlayout import migrate
    from services.passes.lists import watch_flags

    migrate(redis, event_id)
    version = session.scalar(select(Event.revocation_version).where(Event.id == event_id)) or 0
    revoked = [
        f"r{p}" for p in session.scalars(select(Revocation.pass_id).where(Revocation.event_id == event_id))
    ]
    watched = watch_members(*watch_flags(session, event_id, now))
    _replace_set(redis, key(event_id, "flags"), [SENTINEL, *revoked, *watched])
    pipe = redis.pipeline()
    pipe.set(key(event_id, "rv"), version)
    pipe.incr(key(event_id, "wv"))
    pipe.execute()
    return version
