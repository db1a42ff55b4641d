from __future__ import annotations

import pytest

from tests.bot.harness import DingTalkHarness, WeChatHarness


@pytest.fixture
def wx(app, client, platforms):
    fake_wechat, _ = platforms
    return WeChatHarness(app, client, fake_wechat, mode="safe")


@pytest.fixture
def dt(app, client, platforms):
    return DingTalkHarness(app, client)
