"""A WSGI front for the few hot routes, in front of ``Flask.wsgi_app``.

A gate scan, a whole-attempt submit and a WeChat message each cost 100-300 us of our
own work; Flask's per-request machinery around them (request context, URL adapter and
routing, signals, teardown, response conversion) costs 60-100 us more, a third of a gate
scan. For the routes registered here the lane does only what those routes use:

- it matches ``METHOD`` + an exact path pattern (ASCII, no trailing-slash redirects);
  everything else — other methods, other paths, a body without a plain ASCII
  ``Content-Length`` or larger than ``MAX_CONTENT_LENGTH`` — goes to Flask unchanged;
- it reads the body (kept in ``environ["zhizhi.body"]``, where ``core.api`` finds it),
  pushes an app context (``current_app`` and ``g`` work as in a Flask request), calls the
  handler with the environ and the path parameters, and writes its ``Response``;
- an exception from the handler is answered by Flask's own error handling: a request
  context is pushed for it and ``handle_user_exception`` / ``handle_exception`` /
  ``finalize_request`` run as in ``Flask.full_dispatch_request``, so every error body,
  status and log line is the one a Flask-routed request gets;
- teardown: the request's database session is rolled back and closed as by the app's
  ``teardown_request`` handler (``core.app._rollback``).

It steps aside (the request goes to Flask) whenever Flask would run request hooks it does
not — ``before_request``/``after_request`` functions or URL value preprocessors of the app
or of the route's blueprint, teardown functions other than the app's own, receivers of
the request signals — and for the test client's ``preserve_context``.
``tests/core/test_fastlane.py`` holds it to that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response
from flask.signals import got_request_exception, request_finished, request_started

Handler = Callable[..., Response]
Route = tuple[Handler, "int | None", "tuple[str | None, ...]"]  # handler, max body, hook scopes

_CONVERTERS = {"int": r"(?P<%s>[0-9]{1,18})", "string": r"(?P<%s>[A-Za-z0-9._~-]{1,200})"}
_PARAM = re.compile(r"<(?:(int|string):)?([a-z_][a-z0-9_]*)>")


def compile_rule(rule: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], Any]]]:
    """A werkzeug rule with ``<int:x>`` / ``<x>`` parts as an anchored regex and the
    converter of each parameter (ASCII digits, unreserved ASCII for strings: any other
    path goes to Flask, so ``PATH_INFO`` is the path Flask would decode)."""
    pattern, pos, convert = "", 0, {}
    for m in _PARAM.finditer(rule):
        kind = m.group(1) or "string"
        pattern += re.escape(rule[pos : m.start()]) + _CONVERTERS[kind] % m.group(2)
        convert[m.group(2)] = int if kind == "int" else str
        pos = m.end()
    if "<" in rule[pos:]:
        raise ValueError(f"unsupported rule for the fast lane: {rule}")
    return re.compile(pattern + re.escape(rule[pos:]) + r"\Z"), convert


class FastLane:
    """``app.wsgi_app = FastLane(app, app.wsgi_app)``; routes are added with ``add``."""

    def __init__(
        self, app: Flask, inner: Callable[..., Iterable[bytes]], teardown: Callable[[], None]
    ) -> None:
        self.app = app
        self.inner = inner
        self.teardown = teardown
        self.exact: dict[tuple[str, str], Route] = {}
        self.patterns: dict[str, list[tuple[re.Pattern[str], dict[str, Any], Route]]] = {}
        self.expected_teardown = list(app.teardown_request_funcs.get(None, []))
        self.enabled = True
        self.served = 0  # requests the lane answered itself (tests, /metrics-style probes)

    def add(
        self, method: str, rule: str, handler: Handler, *, blueprint: str | None, max_body: int | None = None
    ) -> None:
        """``handler(environ, **path_params) -> Response`` for the Flask route ``rule`` of
        ``blueprint`` (whose hooks are checked as the app's). A body longer than
        ``max_body`` (default: the app's ``MAX_CONTENT_LENGTH``) goes to the Flask route."""
        scopes: tuple[str | None, ...] = (None,)
        if blueprint:
            parts = blueprint.split(".")
            scopes += tuple(".".join(parts[:i]) for i in range(len(parts), 0, -1))
        route = (handler, max_body, scopes)
        if "<" not in rule:
            self.exact[(method, rule)] = route
            return
        pattern, convert = compile_rule(rule)
        self.patterns.setdefault(method, []).append((pattern, convert, route))

    def routes(self) -> list[str]:
        out = [f"{m} {p}" for m, p in self.exact]
        out += [f"{m} {p.pattern}" for m, ps in self.patterns.items() for p, *_rest in ps]
        return sorted(out)

    def hooks_are_ours(self, scopes: tuple[str | None, ...]) -> bool:
        """True when Flask would run nothing around the view that the lane does not: no
        request hooks of the app or the route's blueprints but the app's own teardown."""
        app = self.app
        for scope in scopes:
            if (
                app.before_request_funcs.get(scope)
                or app.after_request_funcs.get(scope)
                or app.url_value_preprocessors.get(scope)
                or (scope is not None and app.teardown_request_funcs.get(scope))
            ):
                return False
        return not (
            app.teardown_request_funcs.get(None, []) != self.expected_teardown
            or request_started.receivers
            or request_finished.receivers
            or got_request_exception.receivers
        )

    def _match(self, environ: dict[str, Any]) -> tuple[Route, dict[str, Any]] | None:
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO") or ""
        exact = self.exact.get((method, path))
        if exact is not None:
            return exact, {}
        for pattern, convert, route in self.patterns.get(method, ()):
            m = pattern.match(path)
            if m is not None:
                return route, {k: convert[k](v) for k, v in m.groupdict().items()}
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = self._match(environ) if self.enabled else None
        if found is None or "werkzeug.debug.preserve_context" in environ:
            return self.inner(environ, start_response)
        (handler, max_body, scopes), params = found
        if not self.hooks_are_ours(scopes):
            return self.inner(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        if max_body is None:
            max_body = self.app.config["MAX_CONTENT_LENGTH"]
        if not (length.isascii() and length.isdigit()) or (max_body is not None and int(length) > max_body):
            return self.inner(environ, start_response)  # chunked, malformed, too large: Flask
        environ["zhizhi.body"] = environ["wsgi.input"].read(int(length)) if length != "0" else b""
        self.served += 1
        app_ctx = self.app.app_context()
        app_ctx.push()
        try:
            try:
                resp = handler(environ, **params)
            except Exception as exc:  # noqa: BLE001 - Flask's error handling answers it
                return self._flask_error(environ, start_response, exc)
            if resp.is_streamed or "Content-Length" not in resp.headers:
                return resp(environ, start_response)  # werkzeug computes what is missing
            start_response(resp.status, resp.headers.to_wsgi_list())
            return resp.response  # a list holding the body (set_data)
        finally:
            try:
                self.teardown()
            finally:
                app_ctx.pop(None)

    def _flask_error(
        self, environ: dict[str, Any], start_response: Callable[..., Any], exc: Exception
    ) -> Iterable[bytes]:
        """Called inside the ``except`` for ``exc`` (Flask's handlers re-raise it with a
        bare ``raise``): answer it as ``Flask.wsgi_app`` would."""
        app = self.app
        ctx = app.request_context(environ)
        ctx.push()  # reuses the lane's app context, so ``g`` (the db session) is shared
        error: BaseException | None = None
        try:
            try:
                response = app.finalize_request(app.handle_user_exception(exc))
            except Exception as unhandled:  # noqa: BLE001 - as Flask.wsgi_app
                error = unhandled
                response = app.handle_exception(unhandled)
            return response(environ, start_response)
        finally:
            ctx.pop(error)
