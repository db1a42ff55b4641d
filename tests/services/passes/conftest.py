"""Fixtures of the pass-domain service tests."""

from __future__ import annotations

import os

import fakeredis
import pytest
import redis

from services.passes import hotstate

EVENT = 5


@pytest.fixture(params=["fakeredis", "redis"])
def r(request):
    """A Redis with event ``EVENT``'s gate flags loaded: fakeredis, and real Redis with ``REDIS_URL``."""
    if request.param == "fakeredis":
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    elif os.environ.get("REDIS_URL"):
        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
    else:
        pytest.skip("REDIS_URL not set")
    for name in client.keys(hotstate.key(EVENT, "*")):
        client.delete(name)
    client.sadd(hotstate.key(EVENT, "flags"), hotstate.SENTINEL)
    yield client
    for name in client.keys(hotstate.key(EVENT, "*")):
        client.delete(name)
