"""One-time binding codes link a chat identity to an account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.auth import load_actor
from core.db import utcnow
from core.errors import DomainError, Forbidden, NotFound
from models.identity import BindingCode, IdentityKind, OrgLevel
from services import auth
from tests.helpers import make_org, make_person


def test_code_links_identity_once(db) -> None:
    person = make_person(db, "grid_worker")
    code, _ = auth.new_binding_code(db, person.id, person.id)
    bound = auth.redeem_binding_code(db, code.lower(), IdentityKind.wechat_oa, "wxapp", "oa-openid")
    assert bound.id == person.id
    with pytest.raises(DomainError) as exc:
        auth.redeem_binding_code(db, code, IdentityKind.wechat_oa, "wxapp", "other-openid")
    assert exc.value.code == "binding_code_used"


def test_expired_and_unknown_codes_are_refused(db) -> None:
    person = make_person(db, "grid_worker")
    code, _ = auth.new_binding_code(db, person.id, None)
    row = db.scalar(select(BindingCode))
    row.expires_at = utcnow() - timedelta(minutes=1)
    with pytest.raises(DomainError) as exc:
        auth.redeem_binding_code(db, code, IdentityKind.dingtalk, "k", "u")
    assert exc.value.code == "binding_code_expired"
    with pytest.raises(NotFound):
        auth.redeem_binding_code(db, "NOPE2345", IdentityKind.dingtalk, "k", "u")


def test_identity_owned_by_someone_else_is_not_moved(db) -> None:
    a, b = make_person(db, "grid_worker"), make_person(db, "grid_worker")
    auth.attach_identity(db, a, IdentityKind.dingtalk, "k", "shared")
    code, _ = auth.new_binding_code(db, b.id, None)
    with pytest.raises(DomainError) as exc:
        auth.redeem_binding_code(db, code, IdentityKind.dingtalk, "k", "shared")
    assert exc.value.code == "identity_taken"


def test_trainer_makes_codes_only_inside_their_jurisdiction(db) -> None:
    d1, d2 = make_org(db, "桐乡市"), make_org(db, "南湖区")
    c1 = make_org(db, "乌镇社区", OrgLevel.community, d1)
    trainer = make_person(db, "trainer", org=d1)
    inside = make_person(db, "grid_worker", org=c1)
    outside = make_person(db, "grid_worker", org=d2)
    actor = load_actor(db, trainer.id)
    code, _ = auth.binding_code_for(db, actor, inside.id)
    assert len(code) == 8
    with pytest.raises(Forbidden):
        auth.binding_code_for(db, actor, outside.id)
