"""The cached chat identity: a message answered from Redis needs no database query, and
every change of who a chat user is (bind, unbind, roles, account) is seen at once."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from bot.store import who_key
from models.identity import Identity, IdentityKind, Person, RoleGrant
from services.auth import new_binding_code
from tests.helpers import make_org, make_person

OPENID = "o_cache"


@contextmanager
def counting_sql(app):
    statements: list[str] = []
    engine = app.extensions["zhizhi"].db.engine

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _cached(app, wx) -> bool:
    return app.extensions["zhizhi"].redis.exists(who_key(f"wechat:{wx.cfg['app_id']}:{OPENID}")) == 1


def _bind(wx, db, *roles: str, name: str = "李网格") -> Person:
    person = make_person(db, *roles, org=make_org(db, "濮院镇"), name=name)
    code, _ = new_binding_code(db, person.id, None)
    db.flush()
    assert "绑定成功" in wx.text(OPENID, f"绑定 {code}").text
    return person


def test_a_bound_users_help_and_a_flow_step_touch_no_database(app, wx, db):
    _bind(wx, db, "grid_worker")
    with counting_sql(app) as statements:
        assert "每日一练" in wx.text(OPENID, "帮助").text
        assert "请发送要查验的编号" in wx.text(OPENID, "查验").text
        assert "已取消" in wx.text(OPENID, "取消").text
        assert "没看懂" in wx.text(OPENID, "你好").text
    assert statements == []


def test_the_first_message_loads_the_identity_once(app, wx, db):
    with counting_sql(app) as statements:
        wx.text(OPENID, "帮助")
    assert statements  # looked up in the database ...
    assert _cached(app, wx)
    with counting_sql(app) as statements:
        wx.text(OPENID, "帮助")
    assert statements == []  # ... and not again


def test_an_identity_bound_elsewhere_is_seen_by_the_next_message(app, wx, db):
    assert "首次使用请先绑定" in wx.text(OPENID, "帮助").text  # cached as unbound
    person = make_person(db, "grid_worker", org=make_org(db, "崇福镇"), name="王网格")
    db.add(Identity(person_id=person.id, kind=IdentityKind.wechat_oa, app_id=wx.cfg["app_id"],
                    external_id=OPENID))  # fmt: skip
    db.commit()
    assert not _cached(app, wx)
    text = wx.text(OPENID, "帮助").text
    assert "每日一练" in text and "首次使用请先绑定" not in text


def test_unbinding_is_seen_by_the_next_message(app, wx, db):
    person = make_person(db, "grid_worker", org=make_org(db, "崇福镇"), name="王网格")
    ident = Identity(person_id=person.id, kind=IdentityKind.wechat_oa, app_id=wx.cfg["app_id"],
                     external_id=OPENID)  # fmt: skip
    db.add(ident)
    db.commit()
    assert "首次使用请先绑定" not in wx.text(OPENID, "帮助").text
    db.delete(ident)
    db.commit()
    assert "首次使用请先绑定" in wx.text(OPENID, "帮助").text
    assert "您还没有绑定账号" in wx.text(OPENID, "每日一练").text


def test_a_new_role_and_a_revoked_role_are_seen_by_the_next_message(app, wx, db):
    person = _bind(wx, db, "citizen")
    assert "每日一练" not in wx.text(OPENID, "帮助").text
    grant = RoleGrant(person_id=person.id, role="grid_worker", org_unit_id=person.org_unit_id)
    db.add(grant)
    db.commit()
    assert "每日一练" in wx.text(OPENID, "帮助").text
    db.delete(grant)
    db.commit()
    assert "每日一练" not in wx.text(OPENID, "帮助").text


def test_a_deactivated_account_is_unbound_for_the_bot(app, wx, db):
    person = _bind(wx, db, "grid_worker")
    person.active = False
    db.commit()
    assert "首次使用请先绑定" in wx.text(OPENID, "帮助").text
    assert "您还没有绑定账号" in wx.text(OPENID, "每日一练").text


def test_a_rolled_back_change_and_unrelated_updates_keep_the_cache(app, wx, db):
    person = _bind(wx, db, "grid_worker")
    db.commit()
    wx.text(OPENID, "帮助")
    assert _cached(app, wx)
    db.add(RoleGrant(person_id=person.id, role="trainer"))
    db.flush()
    db.rollback()
    assert _cached(app, wx)
    person = db.get(Person, person.id)
    person.name = "李网格（改名）"  # not part of what the bot caches
    db.commit()
    assert _cached(app, wx)
