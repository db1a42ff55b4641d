"""Application factory. ``create_app()`` reads the environment; nothing happens at import."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from core import kv, outbox, pii
from core.config import Settings, load_settings
from core.db import Database
from core.errors import DomainError, Unavailable

log = logging.getLogger("zhizhi")

_HTTP_ERRORS = {
    400: ("bad_request", "请求格式错误"),
    404: ("not_found", "接口不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("payload_too_large", "请求体过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}


class _BearerOnlySessions(SecureCookieSessionInterface):
    """Clients authenticate with bearer tokens; no cookie session is read or written.

    Flask's default opens (and signs) a cookie session on every request, about 40 us
    that nothing here uses; writing to ``flask.session`` now fails loudly instead.
    """

    def open_session(self, app, request):
        return self.null_session_class()

    def save_session(self, app, session, response) -> None:
        return None


class Zhizhi:
    """Per-app services: settings, database, Redis, and the unit-of-work commit."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.db = Database(settings.database_url)
        self.redis = kv.connect(settings.redis_url)
        # RQ pickles results; it needs a bytes client of its own.
        self.rq_redis = self.redis
        self._platforms: dict[tuple[Any, ...], Any] = {}
        self.lane: Any = None  # core.fastlane.FastLane in front of app.wsgi_app (FAST_LANE=1)

    def _platform(self, name: str, build: Any) -> Any:
        key = (name, self.settings.wechat.get("api_base"), self.settings.dingtalk.get("api_base"))
        client = self._platforms.get(key)
        if client is None:
            client = self._platforms[key] = build()
        return client

    def http_session(self) -> Any:
        from core.platforms.http import DINGTALK_API, DINGTALK_OAPI, WECHAT_API, make_session

        rewrites = {}
        if self.settings.wechat.get("api_base"):
            rewrites[WECHAT_API] = self.settings.wechat["api_base"]
        if self.settings.dingtalk.get("api_base"):
            rewrites[DINGTALK_OAPI] = rewrites[DINGTALK_API] = self.settings.dingtalk["api_base"]
        return make_session(rewrites)

    def wechat_mp(self) -> Any:
        """Mini-program client (code2session, subscribe messages)."""
        from core.platforms.wechat import WeChatPlatform

        w = self.settings.wechat
        return self._platform(
            "wechat_mp",
            lambda: WeChatPlatform(
                w["mp_app_id"] or "", w["mp_app_secret"] or "", self.redis, self.http_session()
            ),
        )

    def wechat_oa(self) -> Any:
        """Official-account client (template, customer-service messages, media, menu)."""
        from core.platforms.wechat import WeChatPlatform

        w = self.settings.wechat
        return self._platform(
            "wechat_oa",
            lambda: WeChatPlatform(w["app_id"] or "", w["app_secret"] or "", self.redis, self.http_session()),
        )

    def dingtalk(self) -> Any:
        from core.platforms.dingtalk import DingTalkPlatform

        d = self.settings.dingtalk
        return self._platform(
            "dingtalk",
            lambda: DingTalkPlatform(
                d["app_key"] or "", d["app_secret"] or "", d["agent_id"] or 0, self.redis, self.http_session()
            ),
        )

    def request_session(self) -> Session:
        if "db_session" not in g:
            g.db_session = self.db.sessionmaker()
        return g.db_session

    def commit(self, session: Session) -> None:
        """Commit the unit of work, then hand its new outbox rows to the queue.

        A session that never began a transaction and holds no pending objects has
        nothing to commit; skipping the empty commit keeps read-free hot paths (gate
        scans answered from caches and Redis) free of ~50 us of ORM bookkeeping.
        """
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            session.commit()
        from jobs.dispatch import dispatch

        dispatch(self.app, outbox.take_new(session))

    def healthz(self) -> dict[str, Any]:
        db_ok = True
        try:
            with self.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError:
            db_ok = False
        redis_ok = kv.ping(self.redis)
        return {
            "database": "ok" if db_ok else "down",
            "redis": ("ok" if redis_ok else "down") if self.settings.redis_url else "in-process",
            "jobs": "inline" if self.settings.inline_jobs else "rq",
        }


def _configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    if not any(isinstance(f, pii.PIIScrubbingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(pii.PIIScrubbingFilter())
        root.addHandler(handler)
    if root.level == logging.WARNING:
        root.setLevel(logging.INFO)
    for h in root.handlers:
        if not any(isinstance(f, pii.PIIScrubbingFilter) for f in h.filters):
            h.addFilter(pii.PIIScrubbingFilter())


def _register_errors(app: Flask) -> None:
    from core.api import error_response

    def _is_api() -> bool:
        return request.path.startswith("/api/")

    @app.errorhandler(DomainError)
    def on_domain(exc: DomainError):
        session = g.get("db_session")
        if exc.keep_changes and session is not None:
            session.commit()
        _rollback()
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def on_http(exc: HTTPException):
        _rollback()
        if not _is_api():
            return exc
        code, message = _HTTP_ERRORS.get(exc.code or 400, ("http_error", exc.name))
        return error_response(DomainError(message, code=code, status=exc.code))

    @app.errorhandler(OperationalError)
    def on_db_down(exc: OperationalError):
        _rollback()
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return error_response(Unavailable("数据库连接中断，请使用同一幂等键重试"))

    @app.errorhandler(DataError)
    def on_bad_value(exc: DataError):
        # Input that passed validation but not the column (a bound missing in a model).
        _rollback()
        log.warning(
            "database refused a value on %s %s: %s",
            request.method,
            request.path,
            type(exc.orig).__name__ if exc.orig else exc,
        )
        return error_response(DomainError("提交的数值超出允许范围", code="invalid_value", status=422))

    @app.errorhandler(Exception)
    def on_error(exc: Exception):
        _rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(DomainError("服务器内部错误", code="internal_error", status=500))


def _rollback() -> None:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.rollback()
        finally:
            session.close()


def create_app(overrides: dict[str, str] | None = None, settings: Settings | None = None) -> Flask:
    """Build the app from the environment (``overrides`` win over ``os.environ``)."""
    import os

    if settings is None:
        settings = load_settings({**os.environ, **(overrides or {})})
    app = Flask(__name__.split(".")[0], instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    from core.auth import install_invalidation

    install_invalidation()
    app.session_interface = _BearerOnlySessions()
    pii.configure(settings.data_keys, settings.data_key_version, settings.index_key)
    ext = Zhizhi(app, settings)
    app.extensions["zhizhi"] = ext
    _configure_logging(app)
    _register_errors(app)

    @app.teardown_request
    def _close_session(_exc: BaseException | None) -> None:
        _rollback()

    @app.get("/healthz")
    def healthz():
        report = ext.healthz()
        ok = report["database"] == "ok" and report["redis"] != "down"
        return jsonify({"ok": ok, "data": report}), (200 if ok else 503)

    from bot import register as register_bot
    from core.cli import register as register_cli
    from core.openapi import register as register_openapi
    from miniapp_api import register as register_api

    register_api(app)
    register_bot(app)
    register_openapi(app)
    register_cli(app)
    if settings.fast_lane:
        _install_fast_lane(app)
    return app


def _install_fast_lane(app: Flask) -> None:
    """The hot routes (gate scan, whole-attempt submit, WeChat messages) skip Flask's
    per-request machinery; see core.fastlane."""
    from bot import wechat
    from core.api import install_hot_routes
    from core.fastlane import FastLane

    lane = FastLane(app, app.wsgi_app, _rollback)
    install_hot_routes(app, lane)
    lane.add(
        "POST", "/bot/wechat", wechat.receive_environ, blueprint=wechat.bp.name, max_body=wechat.MAX_BODY
    )
    app.wsgi_app = lane  # type: ignore[method-assign]
    app.extensions["zhizhi"].lane = lane
