"""Slow work through the outbox (customer-service text and images) and the menu CLI."""

from __future__ import annotations

import copy

import pytest

import bot.cli
from bot.engine import Message
from bot.jobs import enqueue_image, enqueue_text
from bot.menu import MENU, menu_keys, problems
from bot.router import menu_keys as routed_keys
from core.platforms.http import PlatformError


def _msg(openid: str) -> Message:
    return Message("wechat", "wx_test_app", openid, "text", "m:1", text="x")


def test_image_job_uploads_media_then_sends_an_image_message(platforms, db, run_jobs):
    fake_wechat, _ = platforms
    fake_wechat.touch_user("o_img")
    enqueue_image(db, _msg("o_img"), "qr", "qr:o_img:1", data="HC1:ABC123")
    db.flush()
    assert [o for _, o in run_jobs()] == ["done"]
    uploads = fake_wechat.calls("/cgi-bin/media/upload")
    assert len(uploads) == 1 and uploads[0]["query"]["type"] == "image"
    assert uploads[0]["files"]["media"]["data"].startswith(b"\x89PNG")
    (sent,) = fake_wechat.messages("custom", "o_img")
    assert sent["body"]["msgtype"] == "image"
    assert sent["body"]["image"]["media_id"] in fake_wechat.media


def test_text_job_sends_a_customer_service_message_once_per_key(platforms, db, run_jobs):
    fake_wechat, _ = platforms
    fake_wechat.touch_user("o_txt")
    assert enqueue_text(db, _msg("o_txt"), "您的结果已生成", key="k1") is not None
    assert enqueue_text(db, _msg("o_txt"), "您的结果已生成", key="k1") is None
    db.flush()
    run_jobs()
    (sent,) = fake_wechat.messages("custom", "o_txt")
    assert sent["body"]["text"]["content"] == "您的结果已生成"


def test_text_job_outside_the_48h_window_fails_permanently(platforms, db, run_jobs):
    fake_wechat, _ = platforms
    fake_wechat.add_user("o_old")  # never messaged us: 45015
    enqueue_text(db, _msg("o_old"), "x", key="k2")
    db.flush()
    outcomes = [o for _, o in run_jobs(rounds=1)]
    assert outcomes in (["failed"], ["retry"])
    assert fake_wechat.messages("custom", "o_old") == []


def test_dingtalk_reply_job_sends_a_work_notification(platforms, db, run_jobs):
    _, fake_dingtalk = platforms
    msg = Message("dingtalk", "k", "staff01", "text", "m:1")
    enqueue_text(db, msg, "完成", key="k3")
    db.flush()
    run_jobs()
    (record,) = fake_dingtalk.delivered
    assert record["userid"] == "staff01" and record["msg"]["text"]["content"].startswith("完成\n\n（回复您 ")


def test_menu_push_publishes_keys_that_route_to_commands(app, platforms):
    fake_wechat, _ = platforms
    result = app.test_cli_runner().invoke(args=["wechat", "menu", "push"])
    assert result.exit_code == 0, result.output
    pushed = fake_wechat.menu
    assert 1 <= len(pushed["button"]) <= 3
    keys = menu_keys(pushed["button"])
    assert keys and set(keys) <= set(routed_keys())
    assert "HELP" in keys and "BIND" in keys


def test_every_menu_key_in_the_full_menu_is_unique():
    keys = menu_keys(MENU)
    assert len(keys) == len(set(keys))


def test_menu_push_reports_platform_errors(app, platforms):
    fake_wechat, _ = platforms
    fake_wechat.fail_next("/cgi-bin/menu/create", 40016, "invalid button size")
    result = app.test_cli_runner().invoke(args=["wechat", "menu", "push"])
    assert result.exit_code != 0 and "40016" in result.output


def _broken(change):
    menu = {"button": copy.deepcopy(MENU)}
    change(menu["button"])
    return menu


BROKEN_MENUS = {
    "four top-level buttons": (lambda b: b.append({"type": "click", "name": "多余", "key": "X"}), 40016),
    "top-level name over 16 bytes": (lambda b: b[0].update(name="网格员学习练习评价"), 40018),
    "six sub-buttons": (lambda b: b[0]["sub_button"].extend(copy.deepcopy(b[1]["sub_button"]) * 1), 40023),
    "sub-button name over 60 bytes": (lambda b: b[1]["sub_button"][0].update(name="通" * 21), 40025),
    "sub-button key over 128 bytes": (lambda b: b[1]["sub_button"][0].update(key="K" * 129), 40026),
    "sub-button of an unknown type": (lambda b: b[2]["sub_button"][0].update(type="tap"), 40024),
    "view sub-button without url": (lambda b: b[2]["sub_button"][0].update(type="view"), 40027),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MENUS))
def test_a_menu_wechat_would_refuse_is_refused_before_the_push(app, platforms, case, monkeypatch):
    """The fake menu/create answers the documented code for each broken limit, and the CLI
    refuses the same menu itself, with the reason in Chinese, without calling WeChat."""
    fake_wechat, _ = platforms
    change, errcode = BROKEN_MENUS[case]
    menu = _broken(change)
    assert problems(menu)
    assert problems({"button": copy.deepcopy(MENU)}) == []

    wx = app.extensions["zhizhi"].wechat_oa()
    with pytest.raises(PlatformError) as refused:
        wx.create_menu(menu)
    assert refused.value.errcode == errcode and fake_wechat.menu is None

    calls = len(fake_wechat.calls("/cgi-bin/menu/create"))
    monkeypatch.setattr(bot.cli, "_menu", lambda: menu)
    result = app.test_cli_runner().invoke(args=["wechat", "menu", "push"])
    assert result.exit_code != 0 and "菜单不符合微信的限制" in result.output
    assert len(fake_wechat.calls("/cgi-bin/menu/create")) == calls
