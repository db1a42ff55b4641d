"""Moving gate state out of the layout-1 keys into the per-pass hashes (layout 2).

Layout 1 kept three event-wide hashes keyed ``<pass>:<ring>`` (``state``: ``in``/``out``,
``seen``: the scan time in ms of the scan that set it) and ``<pass>`` (``info``: the
holder summary), and the sets ``rev`` and ``watch`` (now one set, ``flags``, that
``sync_event`` rebuilds from the database). Layout 2 keeps one small hash per pass (see
``hotstate``), so a scan reads all it needs with one HMGET. An event already running
when the new code is deployed keeps every pass's inside/outside state: :func:`migrate`
runs before the gate state is used in the new layout (the sync that a scan asks for
after the deploy, every offline upload, every flush).

A layout-1 field that meets a layout-2 one for the same pass and ring was written by
a process still running the old code (a rolling deploy): the newer scan time wins, as
for offline uploads, and the occupancy count keeps exactly the winner (each layout
counted its own entries).
"""

from __future__ import annotations

from services.passes.hotstate import key, pass_key

OLD_KEYS = ("state", "seen", "info")
#: Layout-1 sets of revoked and watched passes: ``sync_event`` rebuilds them as ``flags``.
OLD_SETS = ("rev", "watch")

#: KEYS: old state, old seen, old info, inside, then one pass hash per pass moved.
#: ARGV: per pass hash, the pass id and its rings as a space-separated list.
MIGRATE_LUA = """
local moved = 0
for k = 5, #KEYS do
  local pid, rings = ARGV[2 * k - 9], ARGV[2 * k - 8]
  local summary = redis.call('HGET', KEYS[3], pid)
  if summary then
    redis.call('HSETNX', KEYS[k], 'i', summary)
    redis.call('HDEL', KEYS[3], pid)
  end
  for r in string.gmatch(rings, '%d+') do
    local f = pid .. ':' .. r
    local state, seen = redis.call('HGET', KEYS[1], f), redis.call('HGET', KEYS[2], f)
    if state or seen then
      local old_in = state == 'in'
      local ts = seen or '-1'
      local cur = redis.call('HGET', KEYS[k], r)
      local delta = 0
      if not cur then
        redis.call('HSET', KEYS[k], r, (old_in and 'I' or 'O') .. ts)
      else
        local cur_in = string.byte(cur) == 73
        local win_in = cur_in
        if tonumber(ts) > tonumber(string.sub(cur, 2)) then
          win_in = old_in
          redis.call('HSET', KEYS[k], r, (old_in and 'I' or 'O') .. ts)
        end
        delta = (win_in and 1 or 0) - (cur_in and 1 or 0) - (old_in and 1 or 0)
      end
      if delta ~= 0 then redis.call('HINCRBY', KEYS[4], r, delta) end
      redis.call('HDEL', KEYS[1], f)
      redis.call('HDEL', KEYS[2], f)
      moved = moved + 1
    end
  end
end
return moved
"""

CHUNK = 500


def migrate(redis, event_id: int) -> int:
    """Move an event's layout-1 gate state into the pass hashes; returns how many
    (pass, ring) states moved. Idempotent, and one EXISTS when there is nothing to move.
    Each chunk of passes moves atomically; a scan of a pass sees it before or after."""
    old = [key(event_id, name) for name in OLD_KEYS]
    sets = [key(event_id, name) for name in OLD_SETS]
    if not redis.exists(*old, *sets):
        return 0
    rings: dict[str, set[str]] = {}
    for name in old[:2]:
        for field in redis.hkeys(name):
            pid, _, ring = (field.decode() if isinstance(field, bytes) else field).partition(":")
            rings.setdefault(pid, set()).add(ring)
    for field in redis.hkeys(old[2]):
        rings.setdefault(field.decode() if isinstance(field, bytes) else field, set())
    passes = sorted(rings.items())
    moved = 0
    for i in range(0, len(passes), CHUNK):
        chunk = passes[i : i + CHUNK]
        keys = [pass_key(event_id, pid) for pid, _ in chunk]
        args = [x for pid, rs in chunk for x in (pid, " ".join(sorted(rs)))]
        moved += int(redis.eval(MIGRATE_LUA, 4 + len(keys), *old, key(event_id, "inside"), *keys, *args))
    redis.delete(*sets)
    return moved
