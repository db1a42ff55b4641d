"""POST /push/subscriptions: the mini-program reports accepted subscribe templates."""

from __future__ import annotations

from sqlalchemy import func, select

import tests.jobs.kinds  # noqa: F401  (registers TPL_MP_EXPIRY)
from models.jobs import SubscriptionCredit
from tests.helpers import Api, make_person, token_for


def test_accepted_templates_add_one_credit_each(db, client) -> None:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post("/push/subscriptions", {"template_ids": ["TPL_MP_EXPIRY"]})
    assert resp.status_code == 201 and resp.get_json()["data"]["credits"] == {"TPL_MP_EXPIRY": 1}
    resp = api.post("/push/subscriptions", {"template_ids": ["TPL_MP_EXPIRY"]})
    assert resp.get_json()["data"]["credits"] == {"TPL_MP_EXPIRY": 2}


def test_unknown_template_is_refused_and_nothing_written(db, client) -> None:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    resp = api.post("/push/subscriptions", {"template_ids": ["TPL_MP_EXPIRY", "NOPE"]})
    assert resp.status_code == 422 and resp.get_json()["error"]["fields"]["template_ids"]
    assert db.scalar(select(func.count()).select_from(SubscriptionCredit)) == 0


def test_empty_list_and_anonymous_are_refused(db, client) -> None:
    api = Api(client, token_for(db, make_person(db, "citizen")))
    assert api.post("/push/subscriptions", {"template_ids": []}).status_code == 422
    assert Api(client).post("/push/subscriptions", {"template_ids": ["TPL_MP_EXPIRY"]}).status_code == 401
