"""The JSON API contract: routes declared with pydantic models, one envelope, typed errors.

A route parses its body/query with pydantic, calls one service, and returns data; this
module wraps that in ``{"ok": true, "data": ...}``, commits the unit of work, replays
idempotent POSTs, and records every route so the OpenAPI document is generated from the
same models that validate requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from flask import Blueprint, Flask, Request, Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from core import idempotency, ratelimit
from core.auth import Actor, authenticate_request
from core.errors import BadRequest, DomainError, Forbidden, NotFound, Unauthenticated
from core.validation import MAX_ID, pydantic_fields

PUBLIC = "public"
ANY = "any"


@dataclass
class Endpoint:
    method: str
    rule: str
    view: Callable[..., Any]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    roles: tuple[str, ...] | str = ANY
    #: True: Idempotency-Key replays are kept in the database by this module.
    #: "view": the header is documented the same, but the view keeps its own replay record
    #: (write-behind hot paths, where a database round trip is what is being avoided); it
    #: reads ``ctx.idempotency_key`` and may call ``ctx.replayable(call)`` on a fallback path.
    idempotent: bool | str = False
    status: int = 200
    content_type: str = "application/json"
    extra_errors: tuple[int, ...] = ()
    rate: str | None = None  # a core.ratelimit.LIMITS name
    #: True: also served by core.fastlane, without Flask's request machinery (no query model)
    hot: bool = False
    owner: Any = None  # the ApiBlueprint (its ``before_view`` runs after authentication)


@dataclass
class Ctx:
    """What a route gets: the unit-of-work session, the actor, parsed inputs."""

    actor: Actor | None
    body: Any = None
    query: Any = None
    path: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    endpoint: Endpoint | None = None
    environ: dict[str, Any] = field(default_factory=dict)
    request_path: str = ""
    request: Request | None = None  # the Flask request (None in core.fastlane)

    def raw_body(self) -> bytes:
        kept = self.environ.get("zhizhi.body")
        if kept is not None:
            return kept
        return _body_bytes(self.request) if self.request is not None else b""

    def replayable(self, call: Callable[[], Any]) -> Response:
        """Run ``call`` with the database-kept Idempotency-Key replay (see core.idempotency)."""
        assert self.endpoint is not None
        invoke = lambda: _invoke(self.endpoint, self, self.path, call)  # noqa: E731
        if self.idempotency_key:
            return idempotency.run(self, self.endpoint, self.idempotency_key, invoke)
        return invoke()

    @property
    def session(self) -> Session:
        """The request's unit-of-work session, opened on first use: routes answered from
        caches (gate scans) never pay for one."""
        return current_app.extensions["zhizhi"].request_session()

    @property
    def me(self) -> Actor:
        if self.actor is None:
            raise Unauthenticated()
        return self.actor

    @property
    def app(self) -> Flask:
        return current_app._get_current_object()  # type: ignore[attr-defined]

    @property
    def settings(self) -> Any:
        return current_app.extensions["zhizhi"].settings

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        return self.environ.get(key)


class ApiBlueprint(Blueprint):
    """A Blueprint whose routes are declared with models (see ``route``)."""

    def __init__(self, name: str, import_name: str, *, tag: str, url_prefix: str = "") -> None:
        super().__init__(name, import_name, url_prefix="/api/v1" + url_prefix)
        self.tag = tag
        self.endpoints: list[Endpoint] = []
        #: ``fn(ctx, endpoint)`` run after authentication and input parsing, before the view
        self.before_view: Callable[[Ctx, Endpoint], None] | None = None

    def route_spec(self, method: str, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
            summary = spec.pop("summary", None) or (view.__doc__ or view.__name__).strip().split("\n")[0]
            ep = Endpoint(
                method=method,
                rule=self.url_prefix + rule,
                view=view,
                summary=summary,
                tag=spec.pop("tag", self.tag),
                owner=self,
                **spec,
            )
            self.endpoints.append(ep)
            self.add_url_rule(rule, endpoint=view.__name__, view_func=_make_view(ep), methods=[method])
            return view

        return decorator

    def get(self, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route_spec("GET", rule, **spec)

    def post(self, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route_spec("POST", rule, **spec)

    def put(self, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route_spec("PUT", rule, **spec)

    def patch(self, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route_spec("PATCH", rule, **spec)

    def delete(self, rule: str, **spec: Any) -> Callable[[Callable[..., Any]], Any]:
        return self.route_spec("DELETE", rule, **spec)


def envelope(data: Any, status: int = 200) -> Response:
    """``{"ok": true, "data": ...}`` as compact UTF-8 JSON (orjson: the same bytes the json
    module writes with ``ensure_ascii=False`` and compact separators, several times faster)."""
    body = orjson.dumps({"ok": True, "data": data}, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, mimetype="application/json")


def error_response(exc: DomainError) -> Response:
    body = json.dumps({"ok": False, "error": exc.to_dict()}, ensure_ascii=False, separators=(",", ":"))
    resp = Response(body, status=exc.status, mimetype="application/json")
    if exc.status == 429 and "retry_after" in exc.details:
        resp.headers["Retry-After"] = str(exc.details["retry_after"])
    if exc.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="zhizhi"'
    return resp


def _json_default(value: Any) -> Any:
    """Only what the json module cannot encode reaches here (no walk over every value)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _body_bytes(req: Request) -> bytes:
    """The raw body. With a Content-Length, read wsgi.input directly (the werkzeug stream
    wrappers cost more than the read on small bodies); keep it for ``request.get_data``."""
    environ = req.environ
    cached = environ.get("zhizhi.body")
    if cached is not None:
        return cached
    length = environ.get("CONTENT_LENGTH")
    if length and length.isascii() and length.isdigit():
        max_length = req.max_content_length
        size = int(length)
        if max_length is not None and size > max_length:
            raw = req.get_data(cache=True)  # werkzeug raises 413
        else:
            raw = environ["wsgi.input"].read(size)
            req._cached_data = raw
    else:
        raw = req.get_data(cache=True)
    environ["zhizhi.body"] = raw
    return raw


def _parse_json_body(model: type[BaseModel], environ: dict[str, Any], req: Request | None) -> Any:
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    raw = environ.get("zhizhi.body")
    if raw is None:
        raw = _body_bytes(req) if req is not None else b""
    if mimetype != "application/json":
        raise BadRequest(
            "请求体必须是 JSON（Content-Type: application/json）", code="unsupported_media_type", status=415
        )
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("请求体不是合法的 JSON", code="invalid_json") from exc
        raise pydantic_fields(exc) from exc


def _parse_query(model: type[BaseModel]) -> Any:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise pydantic_fields(exc, location="query") from exc


def _check_roles(ep: Endpoint, actor: Actor | None) -> None:
    if ep.roles == PUBLIC:
        return
    if actor is None:
        raise Unauthenticated()
    if ep.roles == ANY:
        return
    if not (actor.has_any_role(ep.roles) or actor.has_role("admin")):
        raise Forbidden()


def _make_view(ep: Endpoint) -> Callable[..., Response]:
    def view(**path_params: Any) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        return serve(ep, req.environ, path_params, req)

    view.__name__ = ep.view.__name__
    return view


def serve(
    ep: Endpoint, environ: dict[str, Any], path_params: dict[str, Any], req: Request | None = None
) -> Response:
    """One API request: authenticate, authorize, parse, run the view, commit. ``req`` is
    the Flask request, or None when core.fastlane serves a ``hot`` endpoint (it has read
    the body into ``environ["zhizhi.body"]`` and pushed an app context)."""
    if any(isinstance(v, int) and not 0 < v <= MAX_ID for v in path_params.values()):
        raise NotFound()
    ext = current_app.extensions["zhizhi"]
    actor = authenticate_request(
        ext.request_session,
        environ.get("HTTP_AUTHORIZATION"),
        ep.roles == PUBLIC,
        cache_seconds=ext.settings.auth_cache_seconds,
    )
    g.actor = actor
    _check_roles(ep, actor)
    if ep.rate:
        who = f"p{actor.person_id}" if actor else f"ip{environ.get('REMOTE_ADDR')}"
        ratelimit.hit(ext.redis, ep.rate, who)
    body = _parse_json_body(ep.body, environ, req) if ep.body is not None else None
    query = _parse_query(ep.query) if ep.query is not None else None
    ctx = Ctx(
        actor=actor,
        body=body,
        query=query,
        path=path_params,
        endpoint=ep,
        environ=environ,
        request_path=req.path if req is not None else environ["PATH_INFO"],
        request=req,
    )
    if ep.owner is not None and ep.owner.before_view is not None:
        ep.owner.before_view(ctx, ep)
    key = environ.get("HTTP_IDEMPOTENCY_KEY") if ep.idempotent else None
    if key:
        idempotency.check_key(key)
        ctx.idempotency_key = key
        if ep.idempotent is True:
            return idempotency.run(ctx, ep, key, lambda: _invoke(ep, ctx, path_params))
    resp = _invoke(ep, ctx, path_params)
    session = g.get("db_session")
    if session is not None:
        ext.commit(session)
    return resp


def install_hot_routes(app: Flask, lane: Any) -> None:
    """Put every ``hot`` endpoint on the fast lane (core.fastlane)."""
    for ep in iter_endpoints(app):
        if ep.hot:
            if ep.query is not None:
                raise ValueError(f"{ep.rule}: a hot endpoint takes no query model")
            lane.add(
                ep.method,
                ep.rule,
                lambda environ, _ep=ep, **params: serve(_ep, environ, params),
                blueprint=ep.owner.name if ep.owner is not None else None,
            )


def _invoke(
    ep: Endpoint, ctx: Ctx, path_params: dict[str, Any], call: Callable[[], Any] | None = None
) -> Response:
    result = call() if call is not None else ep.view(ctx, **path_params)
    if isinstance(result, Response):
        return result
    status = ep.status
    if isinstance(result, tuple):
        result, status = result
    return envelope(result, status)


def iter_endpoints(app: Flask) -> Iterable[Endpoint]:
    for bp in app.blueprints.values():
        if isinstance(bp, ApiBlueprint):
            yield from bp.endpoints
