"""Dialogs every user has: help, binding, cancel, verification by number, platform events."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy.orm import Session

from bot.engine import NotBound, Reply, Turn
from bot.router import Command, command, commands, event, flow

ROLE_NAMES = {
    "citizen": "居民",
    "grid_worker": "网格员",
    "trainer": "培训管理员",
    "officer": "安保人员",
    "regulator": "监管人员",
    "enterprise": "企业人员",
    "admin": "管理员",
}

BIND_HINT = (
    "首次使用请先绑定账号：在小程序“我的”页面获取绑定码，然后发送“绑定 绑定码”（例如：绑定 AB23CD45）。"
)
BAD_CODE = "绑定码格式不对：应为 8 位字母和数字，例如 AB23CD45。"
CODE_RE = re.compile(r"^[A-Za-z0-9]{6,12}$")
NUMBER_RE = re.compile(r"^[A-Za-z0-9\-]{4,40}$")

#: ``查验`` asks each deployed domain in turn: (session, number, now) -> text or None.
Verifier = Callable[[Session, str, object], str | None]
VERIFIERS: list[Verifier] = []


def silent() -> Reply:
    return Reply(silent=True)


def help_reply(turn: Turn, unknown: bool = False) -> Reply:
    """What this person can do here (by role), plus the binding hint when unbound.
    For text it did not understand, the short form: just the command words."""
    who = turn.who()
    return Reply(text=_help_text(tuple(who["roles"]), who["pid"] is not None, unknown))


_help_texts: dict[tuple[int, tuple[str, ...], bool, bool], str] = {}


def _help_text(roles: tuple[str, ...], bound: bool, unknown: bool) -> str:
    """The help text for one combination of roles (built once per process)."""
    mine = commands()
    key = (len(mine), roles, bound, unknown)
    text = _help_texts.get(key)
    if text is not None:
        return text
    have = set(roles)
    mine = [cmd for cmd in mine if cmd.roles is None or "admin" in have or have & set(cmd.roles)]
    if unknown:
        words = "、".join(cmd.name for cmd in mine)
        hint = "" if bound else "\n" + BIND_HINT
        text = f"没看懂您的消息。可以发送：{words}（发送“帮助”查看说明）。{hint}"
    else:
        lines = ["您好，这里是智治服务号。您可以发送："]
        lines.extend(f"· {cmd.name}：{cmd.summary}" for cmd in mine)
        if not bound:
            lines.append(BIND_HINT)
        text = "\n".join(lines)
    if len(_help_texts) < 512:  # a handful of role combinations exist
        _help_texts[key] = text
    return text


def not_allowed(turn: Turn, cmd: Command) -> Reply:
    if turn.who()["pid"] is None:
        raise NotBound()
    who = "、".join(ROLE_NAMES.get(r, r) for r in cmd.roles or ())
    return Reply(text=f"“{cmd.name}”仅对{who}开放。发送“帮助”查看您可以使用的功能。")


def private_only(cmd: Command) -> Reply:
    return Reply(text=f"“{cmd.name}”涉及个人信息，请在与机器人的单聊中使用。")


def cancel(turn: Turn, word: str) -> Reply:
    if not turn.flow:
        return Reply(text="当前没有进行中的操作。发送“帮助”查看您可以使用的功能。")
    turn.end_flow()
    verb = "退出" if word == "退出" else "取消"  # "cancel", "q": the same in Chinese
    return Reply(text=f"已{verb}当前操作。发送“帮助”查看您可以使用的功能。")


@command("帮助", summary="查看可用功能", menu_key="HELP", aliases=("help", "?", "？", "菜单"), public=True)
def help_command(turn: Turn, _args: str) -> Reply:
    return help_reply(turn)


@command("绑定", summary="用绑定码绑定账号", menu_key="BIND", takes_args=True)
def bind_command(turn: Turn, args: str) -> Reply:
    if not args:
        turn.start_flow("bind")
        return Reply(text="请发送绑定码（8 位字母和数字，在小程序“我的”页面获取）。发送“取消”退出。")
    return _bind(turn, args)


@flow("bind")
def bind_flow(turn: Turn, text: str) -> Reply:
    if not CODE_RE.match(text):
        return Reply(
            text="绑定码格式不对：应为 8 位字母和数字，例如 AB23CD45。请重新发送，或发送“取消”退出。"
        )
    turn.end_flow()
    return _bind(turn, text)


def _bind(turn: Turn, code: str) -> Reply:
    from services.auth import find_identity, redeem_binding_code

    code = code.strip()
    if not CODE_RE.match(code):
        return Reply(text=BAD_CODE)
    current = find_identity(turn.session, turn.identity_kind, turn.msg.app, turn.msg.sender)
    person = redeem_binding_code(turn.session, code, turn.identity_kind, turn.msg.app, turn.msg.sender)
    if current is not None and current.person_id == person.id:
        pass  # same account again: the code is used up, the binding stays
    actor = turn.actor_for(person.id)
    turn.remember(person.id, sorted(actor.roles) if actor else [])
    return Reply(text=f"绑定成功，{person.name}。发送“帮助”查看您可以使用的功能。")


@command("查验", summary="查验通行证或许可证编号是否有效", menu_key="VERIFY", takes_args=True, public=True)
def verify_command(turn: Turn, args: str) -> Reply:
    if not args:
        turn.start_flow("verify")
        return Reply(text="请发送要查验的编号（通行证号或许可证号）。发送“取消”退出。")
    return _verify(turn, args)


@flow("verify", public=True)
def verify_flow(turn: Turn, text: str) -> Reply:
    if not NUMBER_RE.match(text):
        return Reply(text="编号格式不对：应为字母、数字或“-”。请重新发送，或发送“取消”退出。")
    turn.end_flow()
    return _verify(turn, text)


def _verify(turn: Turn, number: str) -> Reply:
    number = number.strip().upper()
    if not NUMBER_RE.match(number):
        return Reply(text="编号格式不对：应为字母、数字或“-”。")
    if not VERIFIERS:
        return Reply(text="查验功能暂未开放。")
    for verifier in VERIFIERS:
        answer = verifier(turn.session, number, turn.now)
        if answer:
            return Reply(text=answer)
    return Reply(text=f"未找到编号为 {number} 的通行证或许可证，请核对后重试。")


@command("取消", summary="退出当前操作", aliases=("退出",), public=True)
def cancel_command(turn: Turn, args: str) -> Reply:
    return cancel(turn, "取消")


# -- platform events --------------------------------------------------------------------


@event("subscribe")
def on_subscribe(turn: Turn, _key: str) -> Reply:
    text = "欢迎关注智治服务号！"
    if turn.who()["pid"] is None:
        text += "\n" + BIND_HINT
    return Reply(text=text + "\n发送“帮助”查看可用功能。")


#: QR scene prefix -> handler(turn, rest of the scene); domain dialogs add theirs.
SCENES: dict[str, Callable[[Turn, str], Reply]] = {}


def _scene(turn: Turn, scene: str) -> Reply:
    """A QR scene: ``bind_<code>`` binds; a registered prefix (e.g. ``event_<id>``) opens
    its dialog; anything else greets."""
    if scene.startswith("bind_") and CODE_RE.match(scene[5:]):
        return _bind(turn, scene[5:])
    for prefix, handler in SCENES.items():
        if scene.startswith(prefix):
            return handler(turn, scene[len(prefix) :])
    return on_subscribe(turn, scene)


@event("subscribe_scan")
def on_subscribe_scan(turn: Turn, key: str) -> Reply:
    return _scene(turn, key)


@event("scan")
def on_scan(turn: Turn, key: str) -> Reply:
    return _scene(turn, key)


@event("scancode_waitmsg")
def on_scancode(turn: Turn, _key: str) -> Reply:
    scanned = (turn.msg.raw.get("ScanCodeInfo") or {}).get("ScanResult") or ""
    if NUMBER_RE.match(scanned.strip()):
        return _verify(turn, scanned)
    return Reply(text="无法识别该二维码。查验通行证或许可证请发送“查验 编号”。")
