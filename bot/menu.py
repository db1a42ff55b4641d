"""The official-account menu as data: buttons whose keys the router maps to commands.

WeChat allows at most 3 top-level buttons and 5 sub-buttons each; a ``click`` button
sends a CLICK event with its key (see ``bot.router``: ``menu_key`` on each command).
"""

from __future__ import annotations

from typing import Any

# Menu version 1 (2026-11): one group per audience, plus help.
MENU: list[dict[str, Any]] = [
    {
        "name": "学练评",
        "sub_button": [
            {"type": "click", "name": "每日一练", "key": "QUIZ_DAILY"},
            {"type": "click", "name": "我的积分", "key": "QUIZ_POINTS"},
            {"type": "click", "name": "排行榜", "key": "QUIZ_RANK"},
        ],
    },
    {
        "name": "办事",
        "sub_button": [
            {"type": "click", "name": "我的通行证", "key": "MY_PASSES"},
            {"type": "click", "name": "证照提醒", "key": "PERMITS"},
            {"type": "click", "name": "查验编号", "key": "VERIFY"},
        ],
    },
    {
        "name": "帮助",
        "sub_button": [
            {"type": "click", "name": "使用帮助", "key": "HELP"},
            {"type": "click", "name": "绑定账号", "key": "BIND"},
        ],
    },
]


def menu_keys(menu: list[dict[str, Any]] = MENU) -> list[str]:
    keys = []
    for button in menu:
        for sub in button.get("sub_button", [button]):
            if sub.get("type") == "click":
                keys.append(sub["key"])
    return keys


def build_menu(available: dict[str, str]) -> dict[str, Any]:
    """The menu with only the keys some command handles (domains not deployed drop out)."""
    buttons = []
    for button in MENU:
        subs = [s for s in button["sub_button"] if s["key"] in available]
        if subs:
            buttons.append({"name": button["name"], "sub_button": subs})
    return {"button": buttons}
