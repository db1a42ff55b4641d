"""Authorization matrix: every endpoint called as every role.

``MATRIX`` has one row per endpoint (``"METHOD /rule"``) naming the roles that may call
it. An endpoint without a row fails ``test_every_endpoint_has_a_row``. For each row, a
role outside the set gets 401 (anonymous) or 403, and a role inside it gets through the
role check (any answer but 401/403 — the input may still be refused as invalid).
Cross-tenant rules (another citizen, another enterprise, another jurisdiction) are in
``test_cross_tenant_*`` in the domain test modules and listed in ``CROSS_TENANT``.
"""

from __future__ import annotations

import pytest

from core.api import iter_endpoints
from tests.helpers import make_person, token_for

ALL = frozenset({"citizen", "grid_worker", "trainer", "officer", "regulator", "enterprise", "gate", "admin"})
PUBLIC = "public"
STAFF_ADMIN = frozenset({"admin"})

#: "METHOD /rule" -> roles allowed ("public": no token needed; ALL: any logged-in role)
MATRIX: dict[str, frozenset[str] | str] = {
    "POST /api/v1/auth/wechat": PUBLIC,
    "POST /api/v1/auth/dingtalk": PUBLIC,
    "POST /api/v1/auth/password": PUBLIC,
    "POST /api/v1/auth/logout": ALL,
    "GET /api/v1/auth/me": ALL,
    "POST /api/v1/auth/binding-codes": ALL,
    "GET /api/v1/keys": PUBLIC,
    "GET /api/v1/admin/audit": STAFF_ADMIN,
}

#: Endpoints whose data belongs to someone: the test that shows another tenant is refused.
CROSS_TENANT: dict[str, str] = {
    "POST /api/v1/auth/binding-codes": "tests/services/test_auth_binding.py::"
    "test_trainer_makes_codes_only_inside_their_jurisdiction",
}

ROLES = ["anonymous", *sorted(ALL)]


def _key(ep) -> str:
    return f"{ep.method} {ep.rule}"


def _url(rule: str) -> str:
    import re

    return re.sub(r"<(?:\w+:)?\w+>", "1", rule)


def test_every_endpoint_has_a_row(app) -> None:
    missing = sorted(_key(ep) for ep in iter_endpoints(app) if _key(ep) not in MATRIX)
    assert not missing, f"endpoints without an authorization-matrix row: {missing}"
    stale = sorted(set(MATRIX) - {_key(ep) for ep in iter_endpoints(app)})
    assert not stale, f"rows for endpoints that no longer exist: {stale}"


def test_matrix_agrees_with_the_declared_roles(app) -> None:
    """The row is the reviewed policy; the route declaration must say the same thing."""
    for ep in iter_endpoints(app):
        row = MATRIX[_key(ep)]
        declared = (
            PUBLIC
            if ep.roles == "public"
            else (ALL if ep.roles == "any" else frozenset(ep.roles) | {"admin"})
        )
        assert declared == row, _key(ep)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_refused_or_let_through_as_the_matrix_says(app, client, db, role) -> None:
    headers = {}
    if role != "anonymous":
        person = make_person(db, role, name="矩阵测试")
        headers["Authorization"] = f"Bearer {token_for(db, person)}"
    for ep in iter_endpoints(app):
        key = _key(ep)
        if ep.method == "POST" and ep.rule.endswith("/logout"):
            continue  # would revoke the token the rest of this loop uses
        row = MATRIX[key]
        kwargs = {"json": {}} if ep.method in ("POST", "PUT", "PATCH") else {}
        r = client.open(_url(ep.rule), method=ep.method, headers=headers, **kwargs)
        allowed = row == PUBLIC or (role != "anonymous" and role in row)
        if allowed:
            assert r.status_code not in (401, 403), (key, role, r.status_code, r.get_data(as_text=True)[:200])
        else:
            expected = 401 if role == "anonymous" else 403
            assert r.status_code == expected, (key, role, r.status_code)
