"""Dialog engine: binding, flows, cancel words, re-prompts, duplicates, one message at a time."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import select

from bot.engine import Message, handle
from bot.store import Conversation
from models.identity import BindingCode, Identity, IdentityKind
from services.auth import new_binding_code
from tests.helpers import make_org, make_person


def _worker(db):
    org = make_org(db, "乌镇镇")
    return make_person(db, "grid_worker", org=org, name="张网格")


def test_binding_code_links_the_openid_and_help_changes(wx, db):
    person = _worker(db)
    code, _ = new_binding_code(db, person.id, None)
    db.flush()
    assert "绑定" in wx.text("o_bind", "帮助").text
    res = wx.text("o_bind", f"绑定 {code}")
    assert "绑定成功" in res.text and "张网格" in res.text
    ident = db.scalar(select(Identity).where(Identity.external_id == "o_bind"))
    assert ident.person_id == person.id and ident.kind == IdentityKind.wechat_oa
    assert "首次使用请先绑定" not in wx.text("o_bind", "帮助").text


def test_bad_binding_code_gets_the_service_message_and_writes_nothing(wx, db):
    res = wx.text("o_bind2", "绑定 ZZZZZZZZ")
    assert "绑定码不存在" in res.text
    assert db.scalar(select(Identity).where(Identity.external_id == "o_bind2")) is None


def test_bind_without_code_prompts_reprompts_and_cancels(wx, db):
    assert "请发送绑定码" in wx.text("o_flow", "绑定").text
    assert "格式不对" in wx.text("o_flow", "我不知道!!").text
    assert "已取消" in wx.text("o_flow", "取消").text
    assert "没看懂" in wx.text("o_flow", "我不知道").text  # the flow is gone
    assert "当前没有进行中的操作" in wx.text("o_flow", "退出").text


def test_bind_flow_accepts_the_code_as_the_next_message(wx, db):
    person = _worker(db)
    code, _ = new_binding_code(db, person.id, None)
    wx.text("o_flow2", "绑定")
    assert "绑定成功" in wx.text("o_flow2", code.lower()).text


def test_same_msgid_three_times_binds_once_and_replies_identically(wx, db):
    person = _worker(db)
    code, _ = new_binding_code(db, person.id, None)
    replies = [wx.text("o_dup", f"绑定 {code}", msg_id=777001) for _ in range(3)]
    assert all(r.status == 200 for r in replies)
    assert {r.text for r in replies} == {replies[0].text}
    assert "绑定成功" in replies[0].text  # a re-run would have said "绑定码已使用"
    assert len(db.scalars(select(Identity).where(Identity.external_id == "o_dup")).all()) == 1
    assert db.scalar(select(BindingCode).where(BindingCode.person_id == person.id)).used_at is not None


def test_same_event_delivered_twice_is_handled_once(wx, db):
    first = wx.event("o_ev", "subscribe", create_time=1_700_000_000)
    second = wx.event("o_ev", "subscribe", create_time=1_700_000_000)
    assert first.text == second.text and "欢迎" in first.text


def test_flow_state_expires_with_its_ttl(app, wx, db):
    wx.text("o_ttl", "绑定")
    r = app.extensions["zhizhi"].redis
    keys = [k for k in r.scan_iter(match="bot:*:state")]
    assert len(keys) == 1
    assert 3500 < r.ttl(keys[0]) <= 3600
    r.delete(keys[0])  # as if 60 minutes passed
    assert "没看懂" in wx.text("o_ttl", "ABCDEFGH").text


def test_a_second_message_waits_for_the_first_of_the_same_user(app):
    ext = app.extensions["zhizhi"]
    holder = Conversation(ext.redis, "wechat:app:o_lock", "m:1")
    assert holder.claim().status == "new"
    msg = Message("wechat", "app", "o_lock", "text", "m:2", text="帮助")
    released = threading.Timer(0.3, lambda: holder.finish("-", {}))
    released.start()
    started = time.monotonic()
    with app.app_context():
        reply = handle(ext, msg)
    assert time.monotonic() - started >= 0.25
    assert "您可以发送" in reply.text


def test_lock_held_too_long_answers_busy_and_keeps_the_message_retryable(app, monkeypatch):
    import bot.store

    monkeypatch.setattr(bot.store, "WAIT_FOR_LOCK", 0.1)
    ext = app.extensions["zhizhi"]
    holder = Conversation(ext.redis, "wechat:app:o_busy", "m:1")
    holder.claim()
    msg = Message("wechat", "app", "o_busy", "text", "m:9", text="帮助")
    with app.app_context():
        assert "处理中" in handle(ext, msg).text
    holder.finish("-", {})
    with app.app_context():
        assert "您可以发送" in handle(ext, msg).text  # the retry is handled, not deduplicated


def test_state_and_identity_are_json_in_keys_of_their_own(app, wx):
    wx.text("o_state", "帮助")
    r = app.extensions["zhizhi"].redis
    assert not list(r.scan_iter(match="bot:*:state"))  # nothing to keep between messages
    (who,) = list(r.scan_iter(match="bot:*:who"))
    assert json.loads(r.get(who)) == {"pid": None, "roles": []}
    assert 1700 < r.ttl(who) <= 1800
    wx.text("o_state", "绑定")
    (key,) = list(r.scan_iter(match="bot:*:state"))
    assert json.loads(r.get(key))["flow"] == "bind"


def test_duplicate_arriving_while_the_first_is_still_running_gets_success(app, wx):
    ext = app.extensions["zhizhi"]
    first = Conversation(ext.redis, f"wechat:{wx.cfg['app_id']}:o_inflight", "m:555")
    assert first.claim().status == "new"  # the first delivery is still being handled
    assert wx.text("o_inflight", "帮助", msg_id=555).success


def test_answer_too_slow_for_a_passive_reply_goes_out_as_customer_service_message(
    wx, platforms, run_jobs, monkeypatch
):
    import bot.engine

    monkeypatch.setattr(bot.engine, "PASSIVE_BUDGET", -1.0)  # as if the dialog took 5 s
    res = wx.text("o_slow", "帮助", msg_id=556)
    assert res.success
    run_jobs()
    (text,) = wx.sent_texts("o_slow")
    assert "您可以发送" in text
    assert wx.text("o_slow", "帮助", msg_id=556).success  # the retry changes nothing
    run_jobs()
    assert len(wx.sent("o_slow")) == 1


def test_scanning_a_binding_qr_scene_binds(wx, db):
    person = _worker(db)
    code, _ = new_binding_code(db, person.id, None)
    res = wx.event("o_scan", "subscribe", f"qrscene_bind_{code}")
    assert "绑定成功" in res.text
    assert "欢迎" in wx.event("o_scan2", "SCAN", "event_42").text


def test_unexpected_error_in_a_dialog_answers_busy_and_lets_a_retry_run(wx, monkeypatch):
    from bot.dialogs import common

    def boom(turn, args):
        raise RuntimeError("bug")

    monkeypatch.setitem(common.help_command.__globals__, "help_reply", boom)
    res = wx.text("o_err", "帮助", msg_id=557)
    assert res.status == 200 and "系统繁忙" in res.text
    monkeypatch.undo()
    assert "您可以发送" in wx.text("o_err", "帮助", msg_id=557).text


def test_redis_down_answers_busy_and_processes_nothing(app, wx, db, monkeypatch):
    import redis as redis_lib

    person = _worker(db)
    code, _ = new_binding_code(db, person.id, None)

    def down(*args, **kwargs):
        raise redis_lib.ConnectionError("connection refused")

    monkeypatch.setattr(Conversation, "claim", down)
    res = wx.text("o_down", f"绑定 {code}")
    assert res.status == 200 and "系统繁忙" in res.text
    assert db.scalar(select(Identity).where(Identity.external_id == "o_down")) is None


def test_a_dialog_that_takes_longer_than_a_second_answers_success_and_then_by_job(
    wx, platforms, run_jobs, monkeypatch
):
    """The real budget (1 s): a dialog that takes 1.2 s is not answered passively."""
    import time as time_module

    from bot import router
    from bot.engine import Reply

    def dawdle(turn, args):
        time_module.sleep(1.2)
        return Reply(text="慢慢来的答复")

    slow = router.Command("慢", dawdle, "测试", None, None, (), False, 999)
    monkeypatch.setitem(router._WORDS, "慢", slow)
    res = wx.text("o_dawdle", "慢", msg_id=557)
    assert res.success
    run_jobs()
    assert wx.sent_texts("o_dawdle") == ["慢慢来的答复"]


def test_a_slow_command_is_answered_success_at_once_and_its_job_answers_once(
    wx, platforms, run_jobs, monkeypatch
):
    from bot import router
    from bot.engine import Reply

    calls = []

    def report(turn, args):
        calls.append((args, turn.in_job))
        return Reply(text=f"报表：{args}")

    slow = router.Command("报表", report, "测试", None, None, (), True, 999, slow=True)
    monkeypatch.setitem(router._WORDS, "报表", slow)
    monkeypatch.setitem(router._COMMANDS, "报表", slow)
    assert wx.text("o_report", "报表 本月", msg_id=558).success
    assert wx.text("o_report", "报表 本月", msg_id=558).success  # WeChat's retry
    run_jobs()
    assert calls == [("本月", True)]  # once, in its job (inline jobs run it right after the commit)
    assert wx.sent_texts("o_report") == ["报表：本月"]


@pytest.mark.parametrize("typed", ["帮助？", "帮助。", "帮助!", " 帮助… "])
def test_a_command_with_trailing_punctuation_is_understood(wx, typed):
    assert "没看懂" not in wx.text("o_punct", typed).text
    assert "您可以发送" in wx.text("o_punct", typed).text


@pytest.mark.parametrize(
    ("typed", "said"), [("cancel", "已取消"), ("Q", "已取消"), ("退出。", "已退出"), ("取消！", "已取消")]
)
def test_cancel_words_answer_in_chinese_whatever_was_typed(wx, typed, said):
    assert "请发送绑定码" in wx.text("o_cancel_word", "绑定").text
    reply = wx.text("o_cancel_word", typed).text
    assert reply.startswith(said + "当前操作")
