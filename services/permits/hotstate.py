"""Redis state of the ledger hot path (write-behind filing) and the one Lua call a filing costs.

Keys share the hash tag ``{db<oid>}`` (one cluster slot, one database; see ``Keys``).
One stream keeps one global order, so a seller's ship is drained before the buyer's
receive that followed it.

``ver``  version of the process caches (memberships, sites, catalogue, enterprises,
         waybill parties); first set from the clock, so an emptied Redis resets them too
``inv``  invalidation counter: a load from the database is kept only if none happened meanwhile
``bal``  hash ``<enterprise>:<site>:<chemical>`` -> book stock in thousandths (integer)
``rem``  hash ``<permit>`` -> remaining in thousandths, prefixed ``x`` when the permit is not valid
``wb``   hash ``<waybill>`` -> status letter (o/m/c) + flags of ship, depart, arrive, receive
``ids``  event ids reserved from the database sequence (the answer carries the final id)
``s``    the stream of accepted events, moved into PostgreSQL by ``ledger_drain``
``k:<enterprise>:<key>``  first answer to an idempotency key (TTL):
         ``fingerprint|id|site|balance|variance|occurred_at``

A counter missing from Redis makes the script answer ``sync``; the caller drains the
stream, reads the database and stores the value unless ``inv`` moved. Database-side
changes to cached state (sync filing, corrections, revocation, closing a waybill, a new
member...) invalidate the fields when flushed and again after commit (``hotsync.touch``);
if Redis cannot be told, the outbox job ``permits.hot_resync`` does it later.
"""

from __future__ import annotations

import hashlib
import os
import threading
from decimal import Decimal

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
DEDUP_TTL = 7 * 24 * 3600  # replay window of the fast path; the database keeps keys for ever
STEP_INDEX = {"ship": 1, "depart": 2, "arrive": 3, "receive": 4}


def milli(q) -> int:
    """A quantity in thousandths (the columns hold three decimals)."""
    return int((Decimal(q) * 1000).to_integral_value())


def qty_text(m: int | str) -> str:
    """Thousandths as the database shows the quantity ("12.500")."""
    return f"{Decimal(int(m)).scaleb(-3):.3f}"


class Keys:
    """Key names for one database: the tag carries the database's oid, so Redis state
    left by another (or a re-created) database is never mistaken for this one's."""

    def __init__(self, namespace: str) -> None:
        self.tag = tag = f"pl:{{{namespace}}}:"
        self.ver, self.inv, self.bal, self.rem, self.wb = (
            tag + n for n in ("ver", "inv", "bal", "rem", "wb")
        )
        self.ids, self.stream, self.dead = tag + "ids", tag + "s", tag + "dead"
        self.hashes = {"b": self.bal, "p": self.rem, "w": self.wb}

    def dedup(self, enterprise_id: int, key: str) -> str:
        return f"{self.tag}k:{enterprise_id}:{key}"


def bal_field(enterprise_id: int, site_id: int, chemical_id: int) -> str:
    return f"{enterprise_id}:{site_id}:{chemical_id}"


def fingerprint(kind: str, chemical_id: int, m: int, unit: str, site_id, waybill_id, occurred: str) -> str:
    """What makes two submissions under one key "the same event"."""
    raw = f"{kind}|{chemical_id}|{m}|{unit}|{site_id or ''}|{waybill_id or ''}|{occurred}"
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def entry(enterprise_id, chemical_id, kind, m, unit, actor_id, waybill_id, accepted_at: str, key) -> str:
    """The request's part of a stream entry (the key last: it may contain ``|``)."""
    wb = "" if waybill_id is None else waybill_id
    return f"{enterprise_id}|{chemical_id}|{kind}|{m}|{unit}|{actor_id}|{wb}|{accepted_at}|{key}"


def record(fp: str, event_id: int, site_id, balance, variance, occurred_iso: str) -> str:
    none = lambda v: "" if v is None else str(v)  # noqa: E731
    return f"{fp}|{event_id}|{none(site_id)}|{none(balance)}|{none(variance)}|{occurred_iso}"


# KEYS: 1 ver, 2 dedup, 3 bal, 4 rem, 5 wb, 6 ids, 7 stream, 8 inv
# ARGV: 1 ver, 2 fingerprint, 3 ttl, 4 static error, 5 bal field, 6 mode (+ - =), 7 quantity
#       (thousandths), 8 waybill, 9 step (0 = party mismatch), 10 purchase permit,
#       11 transport permit, 12 occurred_at, 13 site, 14 the rest of the stream entry
# The stream entry is one field ``d``: id|balance|variance|book|purchase permit after|
# transport permit after|purchase permit|transport permit|site|occurred_at|ENTRY, where
# ENTRY = enterprise|chemical|kind|quantity|unit|actor|waybill|accepted_at|key (``entry``).
FILE_LUA = """
local ver = redis.call('GET', KEYS[1])
if not ver then
  local t = redis.call('TIME')
  ver = string.format('%d%06d', t[1], t[2])
  redis.call('SET', KEYS[1], ver)
end
if ver ~= ARGV[1] then return {'stale', ver} end
local prior = redis.call('GET', KEYS[2])
if prior then
  if string.sub(prior, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then return {'dup', prior} end
  return {'reused'}
end
if ARGV[4] ~= '' then return {'err', ARGV[4]} end
local bf, wf, pp, tp = ARGV[5], ARGV[8], ARGV[10], ARGV[11]
local missing = {}
if bf ~= '' and redis.call('HEXISTS', KEYS[3], bf) == 0 then table.insert(missing, 'b' .. bf) end
if wf ~= '' and redis.call('HEXISTS', KEYS[5], wf) == 0 then table.insert(missing, 'w' .. wf) end
if pp ~= '' and redis.call('HEXISTS', KEYS[4], pp) == 0 then table.insert(missing, 'p' .. pp) end
if tp ~= '' and redis.call('HEXISTS', KEYS[4], tp) == 0 then table.insert(missing, 'p' .. tp) end
if #missing > 0 then return {'sync', redis.call('GET', KEYS[8]) or '0', unpack(missing)} end
local q = tonumber(ARGV[7])
local ws = nil
if wf ~= '' then
  ws = redis.call('HGET', KEYS[5], wf)
  if string.sub(ws, 1, 1) == 'c' then return {'err', 'waybill_closed'} end
  local i = tonumber(ARGV[9]) + 1
  if i == 1 then return {'err', 'waybill_party_mismatch'} end
  if string.sub(ws, i, i) == '1' then return {'err', 'waybill_step_already_reported'} end
  ws = string.sub(ws, 1, i - 1) .. '1' .. string.sub(ws, i + 1)
end
if pp ~= '' then
  for _, p in ipairs({pp, tp}) do
    local r = redis.call('HGET', KEYS[4], p)
    if string.sub(r, 1, 1) == 'x' or tonumber(r) < q then return {'err', 'quantity_over_permit', p, r} end
  end
end
local bal, book, var = '', '', ''
if bf ~= '' then
  local b = tonumber(redis.call('HGET', KEYS[3], bf))
  local n = b + q
  if ARGV[6] == '=' then
    n = q
    var = string.format('%.0f', q - b)
  elseif ARGV[6] == '-' then
    n = b - q
    if n < 0 then return {'err', 'stock_insufficient', string.format('%.0f', b)} end
  end
  if n >= 1e14 then return {'err', 'invalid_value'} end
  book, bal = string.format('%.0f', b), string.format('%.0f', n)
end
local id = redis.call('LPOP', KEYS[6])
if not id then return {'ids'} end
local pa, ta = '', ''
if ws then redis.call('HSET', KEYS[5], wf, ws) end
if pp ~= '' then
  pa = string.format('%.0f', redis.call('HINCRBY', KEYS[4], pp, '-' .. ARGV[7]))
  ta = string.format('%.0f', redis.call('HINCRBY', KEYS[4], tp, '-' .. ARGV[7]))
end
if bf ~= '' then redis.call('HSET', KEYS[3], bf, bal) end
local rec = ARGV[2] .. '|' .. id .. '|' .. ARGV[13] .. '|' .. bal .. '|' .. var .. '|' .. ARGV[12]
redis.call('SET', KEYS[2], rec, 'EX', tonumber(ARGV[3]))
redis.call('XADD', KEYS[7], '*', 'd', table.concat({id, bal, var, book, pa, ta, pp, tp, ARGV[13],
  ARGV[12], ARGV[14]}, '|'))
return {'new', id, bal, var}
"""
FILE_SHA = hashlib.sha1(FILE_LUA.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

# KEYS: inv, bal, rem, wb; ARGV: inv seen, then (hash index, field, value) triples
LOAD_LUA = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 3 do redis.call('HSETNX', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]) end
return 1
"""
_LOAD_INDEX = {"b": 2, "p": 3, "w": 4}


def run_file(redis, k: Keys, dedup: str, args: list) -> list:
    """One EVALSHA (the script is loaded on first use or after a Redis restart)."""
    keys = (k.ver, dedup, k.bal, k.rem, k.wb, k.ids, k.stream, k.inv)
    command = ("EVALSHA", FILE_SHA, len(keys), *keys, *args)
    try:
        reply = _call(redis, command)
    except NoScriptError:
        redis.script_load(FILE_LUA)
        reply = _call(redis, command)
    return [x.decode() if isinstance(x, bytes) else x for x in reply]


def store_loaded(redis, k: Keys, inv: str, values: dict[str, str]) -> bool:
    """Keep database values of missing fields unless an invalidation happened since ``inv``."""
    args = [inv]
    for field, value in values.items():
        args += [_LOAD_INDEX[field[0]], field[1:], value]
    return bool(redis.eval(LOAD_LUA, 4, k.inv, k.bal, k.rem, k.wb, *args))


def invalidate(redis, k: Keys, fields=(), *, bump: bool = False) -> None:
    """Forget cached fields (``b…``, ``p…``, ``w…``) and/or the process caches' version."""
    pipe = redis.pipeline(transaction=True)
    pipe.incr(k.inv)
    for f in fields:
        pipe.hdel(k.hashes[f[0]], f[1:])
    if bump:
        pipe.incr(k.ver)
    pipe.execute()


def publish_dedup(redis, k: Keys, items) -> None:
    """First answers of events filed on the database path (so a later retry replays them)."""
    pipe = redis.pipeline(transaction=False)
    for enterprise_id, key, rec in items:
        pipe.set(k.dedup(enterprise_id, key), rec, ex=DEDUP_TTL, nx=True)
    pipe.execute()


_local = threading.local()


def _call(redis, command: tuple):
    """Send on a connection this thread keeps for the filing script (as passes.hotstate
    does for gate scans): no per-command pool checkout. A broken connection is dropped
    and the command goes through the normal client path once."""
    conn = getattr(_local, "conn", None)
    if conn is None or _local.owner is not redis or _local.pid != os.getpid():
        try:
            conn = redis.connection_pool.get_connection()
        except (AttributeError, TypeError):
            return redis.execute_command(*command)
        _local.conn, _local.owner, _local.pid = conn, redis, os.getpid()
    try:
        conn.send_command(*command)
        return conn.read_response()
    except REDIS_DOWN:
        conn.disconnect()
        _local.conn = None
        return redis.execute_command(*command)
