"""Per-user conversation state, identity cache, dedup keys and the per-user lock in Redis.

A message costs one Redis round trip plus one write that is not waited for:
- ``claim`` (one Lua script, waited for): check/claim the dedup key, take the user's
  lock, load the user's flow state and cached identity;
- ``finish`` (one Lua script): cache the reply on the dedup key, write (or slide the TTL
  of, or drop) the state, store the identity if it was (re)loaded, release the lock.
  The engine sends it without waiting for its reply; the reply is read before this
  thread's next command on the same connection (see ``bot.link``). Redis applies the
  commands of one connection in order, and the lock keeps the user's next message
  (whichever connection brings it) from reading the state before ``finish`` ran.
All keys of one user share a hash tag, so the scripts also run on Redis Cluster.

Values: the dedup key holds ``""`` while the first delivery is being handled, then the
reply as JSON (``"-"`` for "answer success"). State and identity are JSON with TTLs.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from bot.link import Link, Script, thread_link
from bot.tokens import lock_token

# Seconds. WeChat retries within ~15 s and DingTalk within minutes; an hour is generous.
DEDUP_TTL = 3600
STATE_TTL = 60 * 60  # a flow expires after 60 minutes without a message
#: the cached identity (person, roles) of a chat user; bind/unbind and role or account
#: changes delete it at once (bot.identity), the TTL bounds anything missed.
WHO_TTL = 30 * 60
LOCK_MS = 10_000  # longest a single message may hold the user's lock
WAIT_FOR_LOCK = 0.5  # how long a second message of the same user waits its turn (within the 1 s)
PENDING = ""
SILENT = "-"
UNCHANGED = "="  # finish: the state is as loaded (only its TTL slides)

# TTLs are part of the script text: fewer arguments to encode on every message.
_CLAIM = f"""
local cached = redis.call('GET', KEYS[1])
if cached then return {{'dup', cached}} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', {LOCK_MS}) then return {{'busy', ''}} end
redis.call('SET', KEYS[1], '', 'EX', {DEDUP_TTL})
return {{'new', redis.call('GET', KEYS[3]) or '', redis.call('GET', KEYS[4]) or ''}}
"""

# ARGV: reply ('\\0': forget the dedup key), lock token, state ('': drop, '=': unchanged),
# identity ('': unchanged).
_FINISH = f"""
if ARGV[1] == '\\0' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'EX', {DEDUP_TTL})
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[3])
elseif ARGV[3] == '{UNCHANGED}' then
  redis.call('EXPIRE', KEYS[3], {STATE_TTL})
else
  redis.call('SET', KEYS[3], ARGV[3], 'EX', {STATE_TTL})
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4], 'EX', {WHO_TTL}) end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""


CLAIM, FINISH = Script(_CLAIM), Script(_FINISH)


@dataclass
class Claim:
    status: str  # new | dup | busy
    cached: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    raw_state: str = ""
    who: dict[str, Any] | None = None  # cached identity, None: unknown (load it)


def user_tag(user: str) -> str:
    """The hash tag of one chat user (``channel:app:sender``): all their keys share it."""
    return "{" + hashlib.blake2s(user.encode(), digest_size=12).hexdigest() + "}"


def who_key(user: str) -> str:
    return f"bot:{user_tag(user)}:who"


class Conversation:
    """Redis keys and scripts for one user (channel + app + sender) and one message."""

    def __init__(self, client: redis.Redis, user: str, dedup: str) -> None:
        self._client = client
        tag = user_tag(user)
        if len(dedup) > 120:
            dedup = hashlib.sha256(dedup.encode()).hexdigest()
        self.keys = [f"bot:{tag}:d:{dedup}", f"bot:{tag}:lock", f"bot:{tag}:state", f"bot:{tag}:who"]
        self._token = lock_token()

    @property
    def _link(self) -> Link:
        """The calling thread's connection: a conversation may be finished by another
        thread than the one that claimed it, and one connection is never shared."""
        return thread_link(self._client)

    def claim(self) -> Claim:
        """One round trip: a duplicate returns the cached reply; else lock + load state."""
        status, value, *loaded = self._link.call(CLAIM, self.keys, [self._token])
        status = _text(status)
        value = _text(value)
        if status == "dup":
            return Claim("dup", cached=value)
        if status == "busy":
            return Claim("busy")
        who = _json(_text(loaded[0])) if loaded else {}
        state = _json(value)
        state.pop("who", None)  # where the identity was kept before it had a key of its own
        return Claim("new", state=state, raw_state=value, who=who or None)

    def claim_waiting(self, wait: float | None = None) -> Claim:
        """``claim``, waiting up to ``wait`` seconds while the user's previous message runs."""
        deadline = time.monotonic() + (WAIT_FOR_LOCK if wait is None else wait)
        claim = self.claim()
        while claim.status == "busy" and time.monotonic() < deadline:
            time.sleep(0.02)
            claim = self.claim()
        return claim

    def finish(
        self,
        reply_json: str | None,
        state: dict[str, Any] | str | None,
        who: dict[str, Any] | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Cache the reply (None: forget the dedup key so a retry runs again), store or
        drop the state (``UNCHANGED``: keep it, slide its TTL), store the identity when
        given, release the lock. ``wait=False``: send without waiting for the reply."""
        state_json = state if isinstance(state, str) else dump_state(state)
        who_json = _compact(who) if who is not None else ""
        args = ["\0" if reply_json is None else reply_json, self._token, state_json, who_json]
        if wait:
            self._link.call(FINISH, self.keys, args)
        else:
            self._link.send(FINISH, self.keys, args)


def _compact(value: Any) -> str:
    """Compact UTF-8 JSON (orjson: what json.dumps writes with ``ensure_ascii=False`` and
    compact separators, several times faster)."""
    return orjson.dumps(value).decode()


def dump_state(state: dict[str, Any] | None) -> str:
    return _compact(state) if state else ""


def _json(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return "" if value is None else str(value)
