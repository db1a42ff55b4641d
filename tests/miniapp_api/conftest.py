"""Fixtures the passes API tests share: the demo-like event world and its officer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers import Api
from tests.services.passes.builders import make_world


@pytest.fixture
def world(app, db):
    """An event with rings, gates, an officer and a citizen (tests.services.passes.builders)."""
    return make_world(db, app, datetime.now(UTC))


@pytest.fixture
def officer(client, world):
    return Api(client, world.officer_token)
