"""The OpenAPI document is generated from the route models and is valid OpenAPI 3.1."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_openapi_document_validates(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    login = spec["paths"]["/api/v1/auth/password"]["post"]
    assert "requestBody" in login and "security" not in login
    assert spec["paths"]["/api/v1/auth/me"]["get"]["security"] == [{"bearer": []}]


def test_every_route_under_api_v1_is_documented(app, client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule.startswith(("/api/v1/docs", "/api/v1/openapi")):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


def test_docs_page_serves_swagger_ui(client) -> None:
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200 and b"openapi.json" in page.data
    assert client.get("/api/v1/docs/swagger-ui-bundle.js").status_code == 200
