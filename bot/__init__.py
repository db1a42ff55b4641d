"""Chat bot: WeChat official account and DingTalk robot over one dialog engine.

``register(app)`` adds the callback endpoints (``/bot/wechat``, ``/bot/dingtalk``).
The ``flask wechat`` commands (bot.cli) are registered by core.cli; job handlers live in
``bot.jobs`` (imported by jobs.handlers).
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from bot import dingtalk, identity, wechat

    app.register_blueprint(wechat.bp)
    app.register_blueprint(dingtalk.bp)
    identity.install(app)
