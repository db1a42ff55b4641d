"""JSON API blueprints under /api/v1 (one module per domain)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from miniapp_api import audit, auth, jobs, passes, permits, platform, quiz

    for module in (auth, platform, audit, quiz, passes, permits, jobs):
        app.register_blueprint(module.bp)
