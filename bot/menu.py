"""The official-account menu as data: buttons whose keys the router maps to commands.

WeChat allows at most 3 top-level buttons and 5 sub-buttons each; a ``click`` button
sends a CLICK event with its key (see ``bot.router``: ``menu_key`` on each command).
``problems`` checks a menu against the limits of the menu/create API before it is pushed.
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


# menu/create limits (developers.weixin.qq.com, 创建自定义菜单): names in UTF-8 bytes.
MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
MAX_NAME, MAX_SUB_NAME, MAX_KEY, MAX_URL = 16, 60, 128, 1024
EVENT_TYPES = frozenset(
    {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin",
     "location_select"}
)  # fmt: skip
VIEW_TYPES = frozenset({"view", "miniprogram"})


def problems(menu: dict[str, Any]) -> list[str]:
    """Why WeChat would refuse ``menu`` (Chinese, one line each); empty when it is valid."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        return [f"一级菜单应为 1～{MAX_BUTTONS} 个"]
    found: list[str] = []
    for i, button in enumerate(buttons, start=1):
        where = f"第 {i} 个一级菜单"
        found += _name(button, where, MAX_NAME)
        subs = button.get("sub_button")
        if subs:
            if len(subs) > MAX_SUB_BUTTONS:
                found.append(f"{where}的子菜单超过 {MAX_SUB_BUTTONS} 个")
            for j, sub in enumerate(subs, start=1):
                found += _name(sub, f"{where}的第 {j} 个子菜单", MAX_SUB_NAME) + _action(
                    sub, f"{where}的第 {j} 个子菜单"
                )
        else:
            found += _action(button, where)
    return found


def _size(value: Any) -> int:
    return len(str(value).encode()) if value else 0


def _name(button: dict[str, Any], where: str, limit: int) -> list[str]:
    size = _size(button.get("name"))
    return [] if 1 <= size <= limit else [f"{where}的名称应为 1～{limit} 字节（现为 {size} 字节）"]


def _action(button: dict[str, Any], where: str) -> list[str]:
    kind = button.get("type")
    if kind in EVENT_TYPES:
        size = _size(button.get("key"))
        return [] if 1 <= size <= MAX_KEY else [f"{where}的 key 应为 1～{MAX_KEY} 字节"]
    if kind in VIEW_TYPES:
        size = _size(button.get("url"))
        return [] if 1 <= size <= MAX_URL else [f"{where}的网址应为 1～{MAX_URL} 字节"]
    return [f"{where}的类型“{kind}”不是本服务支持的菜单类型"]
