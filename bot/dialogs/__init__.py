"""Dialogs per domain. Importing this package registers every command, flow and event.

Domain dialogs are imported only when their domain's services exist, so the bot runs
(and says so in its help) whichever domains are deployed.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from bot.dialogs import common  # noqa: F401

#: dialog module -> the service module it needs
DOMAIN_DIALOGS = {
    "bot.dialogs.quiz": "services.quiz.practice",
    "bot.dialogs.passes": "services.passes",
    "bot.dialogs.permits": "services.permits",
}

LOADED: list[str] = []

for _dialog, _needs in DOMAIN_DIALOGS.items():
    try:
        _present = find_spec(_needs) is not None
    except ModuleNotFoundError:
        _present = False
    if _present and find_spec(_dialog) is not None:
        import_module(_dialog)
        LOADED.append(_dialog)
