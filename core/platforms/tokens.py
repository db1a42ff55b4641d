"""Access tokens shared by every process through Redis.

WeChat and DingTalk hand out one app-wide access token; every fetch may invalidate or
rate-limit the others, so all web and worker processes share one cached value and
fetch it under a Redis lock, re-checking after the lock is acquired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import LockError

from core.platforms.http import ERRCODE_TOKEN_UNAVAILABLE, PlatformError

logger = logging.getLogger(__name__)

# Deletes the cached token only if it is still the one the caller saw rejected, so a
# token freshly stored by another process survives a late invalidation.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

MIN_TTL = 30


def _text(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value


class TokenCache:
    """One platform token in Redis, fetched at most once per expiry across processes.

    `fetch` returns ``(token, expires_in_seconds)`` and raises PlatformError on failure.
    The value is cached for ``expires_in - margin`` seconds so it is renewed before the
    platform rejects it. `lock_timeout` bounds how long a crashed holder keeps the lock;
    `wait_timeout` bounds how long a caller waits for another process's fetch.
    """

    def __init__(
        self,
        redis_client,
        key: str,
        fetch: Callable[[], tuple[str, int]],
        margin: int = 300,
        *,
        lock_timeout: float = 30.0,
        wait_timeout: float = 20.0,
    ) -> None:
        self._redis = redis_client
        self.key = key
        self._fetch = fetch
        self._margin = margin
        self._lock_timeout = lock_timeout
        self._wait_timeout = wait_timeout
        self._delete_if_equal = None

    def peek(self) -> str | None:
        """The cached token, without fetching."""
        return _text(self._redis.get(self.key))

    def get(self) -> str:
        """Return the cached token, fetching it under the lock if it is missing."""
        token = self.peek()
        if token:
            return token
        lock = self._redis.lock(
            f"{self.key}:lock",
            timeout=self._lock_timeout,
            sleep=0.05,
            blocking=True,
            blocking_timeout=self._wait_timeout,
        )
        if not lock.acquire():
            token = self.peek()
            if token:
                return token
            raise PlatformError(
                ERRCODE_TOKEN_UNAVAILABLE,
                f"timed out waiting for the token lock {self.key}:lock",
                platform="token",
                transient=True,
            )
        try:
            token = self.peek()
            if token:
                return token
            token, expires_in = self._fetch()
            self._redis.set(self.key, token, ex=self._ttl(int(expires_in)))
            logger.info("fetched a new access token for %s (expires in %ss)", self.key, expires_in)
            return token
        finally:
            try:
                lock.release()
            except LockError:
                # The fetch outlived lock_timeout; the lock already expired.
                logger.warning("token lock %s expired before release", self.key)

    def invalidate(self, stale_token: str) -> bool:
        """Forget `stale_token` if it is still the cached one; True if it was deleted."""
        if self._delete_if_equal is None:
            self._delete_if_equal = self._redis.register_script(_DELETE_IF_EQUAL)
        deleted = self._delete_if_equal(keys=[self.key], args=[stale_token])
        return bool(deleted)

    def _ttl(self, expires_in: int) -> int:
        if expires_in > self._margin + MIN_TTL:
            return expires_in - self._margin
        return max(1, min(expires_in, max(MIN_TTL, expires_in // 2)))
