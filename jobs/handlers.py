"""Imports every module that registers outbox handlers (``@job``)."""

import bot.jobs  # noqa: F401,E402  (bot.reply, bot.image)
