"""Outbound clients for WeChat and DingTalk.

`PlatformError` and `make_session` are light; the platform classes are imported on
first access so that importing this package does not pull in wechatpy.
"""

from __future__ import annotations

from importlib import import_module

from core.platforms.http import PlatformError, make_session

__all__ = ["DingTalkPlatform", "PlatformError", "TokenCache", "WeChatPlatform", "make_session"]

_LAZY = {
    "DingTalkPlatform": "core.platforms.dingtalk",
    "TokenCache": "core.platforms.tokens",
    "WeChatPlatform": "core.platforms.wechat",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
