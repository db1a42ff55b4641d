"""OpenAPI 3.1 generated from the routes' pydantic models; Swagger UI at /api/v1/docs/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, jsonify, send_from_directory
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from core.api import ANY, PUBLIC, Endpoint, iter_endpoints
from core.validation import MAX_ID

REF = "#/components/schemas/{model}"
_ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 415, 422, 429}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["ok", "error"],
    "properties": {
        "ok": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "稳定的错误码（snake_case）"},
                "message": {"type": "string", "description": "中文说明"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "details": {"type": "object"},
            },
        },
    },
}


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for conv, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule):
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID} if conv == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule), params


def _models(endpoints: list[Endpoint]) -> tuple[dict[Any, Any], dict[str, Any]]:
    pairs: list[tuple[type[BaseModel], str]] = []
    for ep in endpoints:
        if ep.body is not None:
            pairs.append((ep.body, "validation"))
        if isinstance(ep.response, type) and issubclass(ep.response, BaseModel):
            pairs.append((ep.response, "serialization"))
    unique = list(dict.fromkeys(pairs))
    refs, top = models_json_schema(unique, ref_template=REF)
    return refs, top.get("$defs", {})


def _response_schema(ep: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    resp = ep.response
    if isinstance(resp, type) and issubclass(resp, BaseModel):
        data = refs[(resp, "serialization")]
    elif resp is None:
        data = {}
    else:
        data = TypeAdapter(resp).json_schema(mode="serialization", ref_template=REF)
    return {
        "type": "object",
        "required": ["ok", "data"],
        "properties": {"ok": {"const": True}, "data": data},
    }


def _operation(ep: Endpoint, refs: dict[Any, Any], path_params: list[dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{ep.tag}_{ep.view.__name__}",
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": list(path_params),
    }
    if ep.query is not None:
        schema = ep.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            op["parameters"].append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    if ep.idempotent:
        op["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 128, "pattern": "^[\\x21-\\x7e]+$"},
                "description": "重放返回首次响应；同一键用于不同请求体将被拒绝",
            }
        )
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
        }
    ok = {"description": "成功", "content": {ep.content_type: {"schema": _response_schema(ep, refs)}}}
    if ep.content_type != "application/json":
        ok = {
            "description": "成功",
            "content": {ep.content_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    op["responses"] = {str(ep.status): ok}
    statuses = set(_ERROR_STATUSES) | set(ep.extra_errors) | {500, 503}
    for status in sorted(statuses):
        op["responses"][str(status)] = {
            "description": "错误",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if ep.roles != PUBLIC:
        op["security"] = [{"bearer": []}]
        if ep.roles != ANY:
            op["description"] = "角色：" + ", ".join(ep.roles)
    return op


def build_spec(app: Flask) -> dict[str, Any]:
    endpoints = list(iter_endpoints(app))
    refs, defs = _models(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path, params = _path(ep.rule)
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep, refs, params)
    defs["Error"] = ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "智治 Zhizhi API",
            "version": "1.0.0",
            "description": "网格员学练评、数字安保通行证、易制毒化学品电子许可",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def register(app: Flask) -> None:
    from swagger_ui_bundle import swagger_ui_path

    ui = Path(swagger_ui_path)

    @app.get("/api/v1/openapi.json")
    def openapi_json() -> Response:
        ext = current_app.extensions["zhizhi"]
        if getattr(ext, "openapi_cache", None) is None:
            ext.openapi_cache = build_spec(current_app)
        return jsonify(ext.openapi_cache)

    @app.get("/api/v1/docs/")
    def docs_page() -> Response:
        html = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>智治 API</title>'
            '<link rel="stylesheet" href="swagger-ui.css"></head><body><div id="ui"></div>'
            '<script src="swagger-ui-bundle.js"></script><script>'
            'SwaggerUIBundle({url:"/api/v1/openapi.json",dom_id:"#ui"});</script></body></html>'
        )
        return Response(html, mimetype="text/html")

    @app.get("/api/v1/docs/<path:name>")
    def docs_asset(name: str) -> Response:
        return send_from_directory(ui, name)
