"""Pytest plugin: function-scoped fake platform servers.

Load with ``pytest_plugins = ["tests.fakes.fixtures"]`` (root conftest or test module).
Point a client at a fake with ``make_session(fake.rewrites)``.
"""

from __future__ import annotations

import pytest

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wechat import FakeWeChat


@pytest.fixture
def fake_wechat():
    server = FakeWeChat().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_dingtalk():
    server = FakeDingTalk().start()
    try:
        yield server
    finally:
        server.stop()
