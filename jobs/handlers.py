"""Imports every module that registers outbox handlers (``@job``) and periodic rows."""

import bot.jobs  # noqa: F401  (bot.reply, bot.image)
import jobs.passes  # noqa: F401
from jobs import documents, periodic, permits, quiz, schedule  # noqa: F401
from jobs.push import handler  # noqa: F401
