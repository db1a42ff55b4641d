"""JSON API blueprints under /api/v1 (one module per domain)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from miniapp_api import audit, auth, platform

    for module in (auth, platform, audit):
        app.register_blueprint(module.bp)
