import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest
import redis

from core.platforms.http import PlatformError, make_session
from core.platforms.tokens import TokenCache
from core.platforms.wechat import WeChatPlatform

pytest_plugins = ["tests.fakes.fixtures"]

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture(params=["redis", "fakeredis"])
def redis_client(request):
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis()
        return
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def key(redis_client):
    """A token key of this test only; concurrent runs sharing db 9 cannot collide."""
    name = f"test:{uuid.uuid4().hex}:token"
    yield name
    redis_client.delete(name, f"{name}:lock")


class CountingFetch:
    def __init__(self, delay: float = 0.2, expires_in: int = 7200) -> None:
        self.count = 0
        self.delay = delay
        self.expires_in = expires_in
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, int]:
        with self._lock:
            self.count += 1
            n = self.count
        time.sleep(self.delay)
        return f"token-{n}", self.expires_in


def run_concurrently(fn, n: int = 8) -> list:
    """Call `fn` from `n` threads released together; re-raises the first failure."""
    barrier = threading.Barrier(n)

    def worker():
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(worker) for _ in range(n)]
        return [f.result(timeout=30) for f in futures]


def test_eight_concurrent_gets_fetch_the_token_once(redis_client, key):
    fetch = CountingFetch()
    cache = TokenCache(redis_client, key, fetch)

    tokens = run_concurrently(cache.get)

    assert fetch.count == 1
    assert set(tokens) == {"token-1"}


def test_invalidate_of_current_token_leads_to_exactly_one_more_fetch(redis_client, key):
    fetch = CountingFetch()
    cache = TokenCache(redis_client, key, fetch)
    stale = cache.get()

    assert cache.invalidate(stale) is True
    tokens = run_concurrently(cache.get)

    assert fetch.count == 2
    assert set(tokens) == {"token-2"}


def test_invalidate_with_an_old_token_keeps_the_newer_one(redis_client, key):
    fetch = CountingFetch(delay=0)
    cache = TokenCache(redis_client, key, fetch)
    old = cache.get()
    cache.invalidate(old)
    newer = cache.get()

    assert cache.invalidate(old) is False
    assert cache.get() == newer == "token-2"
    assert fetch.count == 2


def test_cached_token_expires_margin_seconds_before_the_platform_token(redis_client, key):
    cache = TokenCache(redis_client, key, CountingFetch(delay=0, expires_in=7200), margin=300)
    cache.get()

    assert 6890 <= redis_client.ttl(key) <= 6900


def test_short_lived_token_is_still_cached_briefly(redis_client, key):
    cache = TokenCache(redis_client, key, CountingFetch(delay=0, expires_in=300), margin=300)
    cache.get()

    assert 0 < redis_client.ttl(key) <= 300


def test_failed_fetch_propagates_and_releases_the_lock(redis_client, key):
    calls = []

    def failing_then_ok():
        calls.append(1)
        if len(calls) == 1:
            raise PlatformError(-1, "system error", platform="wechat", transient=True)
        return "token-ok", 7200

    cache = TokenCache(redis_client, key, failing_then_ok, wait_timeout=1)
    with pytest.raises(PlatformError):
        cache.get()

    assert cache.get() == "token-ok"


def test_waiting_for_a_held_lock_times_out_as_a_transient_error(redis_client, key):
    cache = TokenCache(redis_client, key, CountingFetch(delay=0), wait_timeout=0.2)
    held = redis_client.lock(f"{key}:lock", timeout=5)
    assert held.acquire(blocking=False)
    try:
        with pytest.raises(PlatformError) as info:
            cache.get()
    finally:
        held.release()

    assert info.value.transient


def test_eight_processes_share_one_stable_token_fetch(redis_client, key, fake_wechat):
    fake_wechat.token_delay = 0.2
    platforms = iter(
        WeChatPlatform(
            fake_wechat.app_id,
            fake_wechat.secret,
            redis_client,
            make_session(fake_wechat.rewrites),
            token_key=key,
        )
        for _ in range(8)
    )
    assign = threading.Lock()

    def get_token() -> str:
        with assign:
            platform = next(platforms)
        return platform.tokens.get()

    tokens = run_concurrently(get_token)

    assert fake_wechat.token_fetches == 1
    assert len(set(tokens)) == 1
    body = fake_wechat.calls("/cgi-bin/stable_token")[0]["json"]
    assert body == {
        "grant_type": "client_credential",
        "appid": fake_wechat.app_id,
        "secret": fake_wechat.secret,
        "force_refresh": False,
    }
