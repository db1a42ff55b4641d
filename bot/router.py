"""Commands, menu keys and flows: what a typed word or a menu click leads to.

Dialog modules register themselves with ``@command`` and ``@flow`` when
``bot.dialogs`` is imported (on first use, never at import of this module). Routing
order: cancel words; the user's current flow (which re-prompts on bad input); a
command; otherwise the help text (never silence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine import Reply, Turn

Handler = Callable[["Turn", str], "Reply"]

CANCEL_WORDS = frozenset({"取消", "退出", "cancel", "q"})
#: end punctuation people (and speech recognition) add to a typed word: "帮助？", "每日一练。"
TRAILING = "。．.，,！!？?~～、；;：:…"


def plain(text: str) -> str:
    """The text without surrounding space and trailing punctuation ("？" alone stays)."""
    text = text.strip()
    bare = text.rstrip(TRAILING).rstrip()
    return bare or text


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    summary: str
    roles: tuple[str, ...] | None  # None: anyone
    menu_key: str | None
    aliases: tuple[str, ...]
    takes_args: bool
    order: int
    slow: bool = False  # answered by a job through the customer-service API (bot.jobs.run_command)
    public: bool = False  # usable in a group chat (nothing personal in its answers)


_COMMANDS: dict[str, Command] = {}
_WORDS: dict[str, Command] = {}
_MENU: dict[str, Command] = {}
_FLOWS: dict[str, Handler] = {}
_PUBLIC_FLOWS: set[str] = set()
_EVENTS: dict[str, Handler] = {}


def command(
    name: str,
    *,
    summary: str,
    roles: tuple[str, ...] | None = None,
    menu_key: str | None = None,
    aliases: tuple[str, ...] = (),
    takes_args: bool = False,
    slow: bool = False,
    public: bool = False,
) -> Callable[[Handler], Handler]:
    """Register a command. ``slow``: its work may take longer than the passive-reply
    budget, so the message is answered ``success`` at once and a job runs the command
    and sends its answer (WeChat customer-service message, DingTalk work notification).
    ``public``: also answered in a group chat; the others ask for a private chat there,
    since their answers (points, passes, credentials, binding codes) are personal."""

    def register(func: Handler) -> Handler:
        cmd = Command(name, func, summary, roles, menu_key, aliases, takes_args, len(_COMMANDS), slow, public)
        _COMMANDS[name] = cmd
        for word in (name, *aliases):
            _WORDS[word.lower()] = cmd
        if menu_key:
            _MENU[menu_key] = cmd
        return func

    return register


def flow(name: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    """A multi-step dialog; only ``public`` ones take messages from a group chat."""

    def register(func: Handler) -> Handler:
        _FLOWS[name] = func
        if public:
            _PUBLIC_FLOWS.add(name)
        return func

    return register


def event(name: str) -> Callable[[Handler], Handler]:
    """Handler for a platform event (lower-case name: subscribe, scan, ...)."""

    def register(func: Handler) -> Handler:
        _EVENTS[name] = func
        return func

    return register


def _load() -> None:
    import bot.dialogs  # noqa: F401  (registers every dialog)


_sorted: list[Command] = []


def commands() -> list[Command]:
    """Every command in registration order (do not modify the list)."""
    _load()
    if len(_sorted) != len(_COMMANDS):
        _sorted[:] = sorted(_COMMANDS.values(), key=lambda c: c.order)
    return _sorted


def menu_keys() -> dict[str, str]:
    _load()
    return {key: cmd.name for key, cmd in _MENU.items()}


def find(text: str) -> tuple[Command, str] | None:
    """The command ``text`` invokes and its argument ("绑定 AB12" → 绑定, "AB12")."""
    _load()
    text = " ".join(text.split())
    word, _, rest = text.partition(" ")
    cmd = _WORDS.get(word.lower())
    if cmd is not None and (rest == "" or cmd.takes_args):
        return cmd, rest
    for cmd in _COMMANDS.values():  # "绑定AB12" without the space
        if cmd.takes_args and text.startswith(cmd.name) and len(text) > len(cmd.name):
            return cmd, text[len(cmd.name) :].strip()
    return None


def route(turn: Turn) -> Reply:
    from bot.dialogs import common

    _load()
    msg = turn.msg
    if msg.kind == "event":
        if msg.event == "click" and msg.event_key in _MENU:
            return run(turn, _MENU[msg.event_key], "")
        handler = _EVENTS.get(msg.event)
        return handler(turn, msg.event_key) if handler else common.silent()
    text = msg.text.strip()
    if not text:
        return common.help_reply(turn, unknown=True)
    if plain(text).lower() in CANCEL_WORDS:
        return common.cancel(turn, plain(text))
    if turn.flow in _FLOWS and (not msg.group or turn.flow in _PUBLIC_FLOWS):
        return _FLOWS[turn.flow](turn, text)
    if turn.flow and turn.flow not in _FLOWS:  # a flow whose dialog is gone (deploy): drop it
        turn.end_flow()
    found = find(plain(text))
    if found is None:
        return common.help_reply(turn, unknown=True)
    return run(turn, *found)


def named(name: str) -> Command | None:
    _load()
    return _COMMANDS.get(name)


def run(turn: Turn, cmd: Command, args: str) -> Reply:
    from bot.dialogs import common

    if turn.msg.group and not cmd.public:
        return common.private_only(cmd)
    if cmd.roles is not None and not turn.has_role(*cmd.roles):
        return common.not_allowed(turn, cmd)
    if cmd.slow and not turn.in_job:
        from bot.engine import Reply
        from bot.jobs import enqueue_command

        enqueue_command(turn.session, turn.msg, cmd.name, args)
        return Reply(silent=True)  # the job answers; a platform retry gets ``success`` too
    return cmd.handler(turn, args)
