"""The app a worker process uses, built on first use (never at import)."""

from __future__ import annotations

import threading

from flask import Flask

_app: Flask | None = None
_lock = threading.Lock()


def get_app() -> Flask:
    global _app
    with _lock:
        if _app is None:
            from core.app import create_app

            _app = create_app()
        return _app


def set_app(app: Flask) -> None:
    """Tests and ``make worker`` hand in an app built with their own settings."""
    global _app
    with _lock:
        _app = app
