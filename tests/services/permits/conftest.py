from __future__ import annotations

import pytest

from tests.services.permits.factories import build_world


@pytest.fixture
def kek(app):
    return app.extensions["zhizhi"].settings.signing_kek


@pytest.fixture
def world(db, kek):
    return build_world(db, kek)
