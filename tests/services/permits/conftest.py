from __future__ import annotations

import pytest

from tests.services.permits.factories import build_world


@pytest.fixture
def kek(app):
    return app.extensions["zhizhi"].settings.signing_kek


@pytest.fixture
def world(db, kek):
    return build_world(db, kek)


@pytest.fixture
def hot(app):
    """The app's write-behind ledger (skips in the embedded mode, which files synchronously)."""
    from services.permits import hotsync

    h = hotsync.for_app(app)
    if h is None:
        pytest.skip("write-behind needs Redis and PostgreSQL (embedded mode files synchronously)")
    h._down_until = 0.0
    yield h
    h._down_until = 0.0  # a test that tripped the breaker must not leave it open
