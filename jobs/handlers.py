"""Imports every module that registers outbox handlers (``@job``)."""

from jobs import quiz  # noqa: F401
import jobs.passes  # noqa: F401
from jobs import permits  # noqa: F401
from jobs import documents, periodic  # noqa: F401
from jobs.push import handler  # noqa: F401
import bot.jobs  # noqa: F401,E402  (bot.reply, bot.image)
