"""Imports every module that registers outbox handlers (``@job``)."""

import bot.jobs  # noqa: F401  (bot.reply, bot.image)
