"""WeChat callback: verification, the three modes, and every refusal path (4xx, nothing
processed, never 500)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot.crypto import MessageCrypto, sha1_signature
from models.platform import OutboxItem
from tests.bot import test_crypto as vector
from tests.bot.harness import WeChatHarness, bot_keys, wechat_xml


def nothing_processed(app, db) -> bool:
    return not bot_keys(app) and db.scalar(select(func.count()).select_from(OutboxItem)) == 0


def test_get_verification_echoes_echostr_when_signed(wx, client):
    ts, nonce = str(int(time.time())), "123"
    sig = sha1_signature(wx.cfg["token"], ts, nonce)
    res = client.get(
        "/bot/wechat", query_string={"signature": sig, "timestamp": ts, "nonce": nonce, "echostr": "e1"}
    )
    assert res.status_code == 200 and res.get_data(as_text=True) == "e1"
    bad = client.get(
        "/bot/wechat", query_string={"signature": "0" * 40, "timestamp": ts, "nonce": nonce, "echostr": "x"}
    )
    assert bad.status_code == 403


def plaintext_account(app, monkeypatch):
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "wechat", dict(settings.wechat, aes_key=None))


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_help_is_answered_in_every_mode(app, client, platforms, mode, monkeypatch):
    if mode == "plain":
        plaintext_account(app, monkeypatch)
    h = WeChatHarness(app, client, platforms[0], mode=mode)
    res = h.text("o_user_1", "帮助")
    assert res.status == 200
    assert "每日一练" in res.text or "绑定" in res.text
    assert res.reply["ToUserName"] == "o_user_1"


def test_unknown_text_and_unknown_message_types_get_help_never_silence(wx):
    assert "没看懂" in wx.text("o_user_2", "你好呀").text
    image = wx.message("o_user_2", "image", PicUrl="http://x/p.jpg", MediaId="m1")
    assert "没看懂" in image.text
    location = wx.message(
        "o_user_2", "location", Location_X="30.1", Location_Y="120.2", Scale=15, Label="乌镇"
    )
    assert "没看懂" in location.text
    odd = wx.message("o_user_2", "some_future_type", Foo="bar")
    assert "没看懂" in odd.text


def test_events_subscribe_welcomes_and_unsubscribe_is_silent(wx):
    assert "欢迎关注" in wx.event("o_user_3", "subscribe").text
    assert wx.event("o_user_3", "unsubscribe").success
    assert wx.event("o_user_3", "VIEW", "https://example.com").success
    assert "没看懂" not in wx.event("o_user_3", "CLICK", "HELP").text
    assert "您可以发送" in wx.event("o_user_3", "CLICK", "HELP").text


def test_sample_vector_configuration_answers_a_current_message(app, client, monkeypatch):
    """The WXBizMsgCrypt sample account (spamtest / wx2c2769f8efd9abc2): its message,
    encrypted the same way with a current timestamp, is answered (encrypted)."""
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(
        settings,
        "wechat",
        dict(settings.wechat, token=vector.TOKEN, aes_key=vector.AES_KEY, app_id=vector.APP_ID),
    )
    inner = MessageCrypto(vector.TOKEN, vector.AES_KEY, vector.APP_ID).decrypt(vector.ENCRYPT)
    h = WeChatHarness(app, client, None, mode="safe")
    ts, nonce = str(int(time.time())), vector.NONCE
    encrypt = h.crypto.encrypt(inner)
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": sha1_signature(vector.TOKEN, ts, nonce, encrypt)}  # fmt: skip
    res = h.post_raw(query, wechat_xml({"ToUserName": "gh_10f6c3c3ac5a", "Encrypt": encrypt}))
    assert res.status == 200
    assert res.reply["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert "没看懂" in res.reply["Content"]  # "abcdteT" is not a command


def test_sample_vector_as_sent_in_2014_is_refused_by_the_timestamp_window(app, client, db, monkeypatch):
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(
        settings,
        "wechat",
        dict(settings.wechat, token=vector.TOKEN, aes_key=vector.AES_KEY, app_id=vector.APP_ID),
    )
    query = {"timestamp": vector.TIMESTAMP, "nonce": vector.NONCE, "encrypt_type": "aes",
             "msg_signature": vector.MSG_SIGNATURE}  # fmt: skip
    body = wechat_xml({"ToUserName": "gh_10f6c3c3ac5a", "Encrypt": vector.ENCRYPT})
    res = client.post("/bot/wechat", query_string=query, data=body)
    assert res.status_code == 403
    assert nothing_processed(app, db)


# -- refusals ---------------------------------------------------------------------------


def _signed(wx, fields, **over):
    query, body = wx.signed_query(fields)
    query.update(over)
    return query, body


def fields(openid="o_bad"):
    return {"ToUserName": "gh", "FromUserName": openid, "CreateTime": int(time.time()),
            "MsgType": "text", "Content": "帮助", "MsgId": 99}  # fmt: skip


def test_bad_msg_signature_is_refused(wx, app, db):
    query, body = _signed(wx, fields(), msg_signature="0" * 40)
    res = wx.post_raw(query, body)
    assert res.status == 403 and nothing_processed(app, db)


def test_plaintext_post_to_a_safe_mode_account_is_refused(app, client, platforms, db):
    h = WeChatHarness(app, client, platforms[0], mode="plain")
    res = h.text("o_forger", "帮助")  # correctly signed, but the signature does not cover the body
    assert res.status == 403 and nothing_processed(app, db)


def test_plaintext_mode_bad_signature_is_refused(app, client, platforms, db, monkeypatch):
    plaintext_account(app, monkeypatch)
    h = WeChatHarness(app, client, platforms[0], mode="plain")
    query, body = h.signed_query(fields())
    query["signature"] = "f" * 40
    assert h.post_raw(query, body).status == 403
    query.pop("signature")
    assert h.post_raw(query, body).status == 403
    assert nothing_processed(app, db)


@pytest.mark.parametrize("skew", [-301, 301, -86400 * 365])
def test_timestamp_outside_window_is_refused_even_when_signed(wx, app, db, skew):
    ts = str(int(time.time()) + skew)
    query, body = wx.signed_query(fields(), timestamp=ts)
    res = wx.post_raw(query, body)
    assert res.status == 403 and nothing_processed(app, db)


def test_timestamp_inside_window_is_accepted(wx):
    query, body = wx.signed_query(fields(), timestamp=str(int(time.time()) - 290))
    assert wx.post_raw(query, body).status == 200


def test_wrong_app_id_inside_the_ciphertext_is_refused(wx, app, db):
    other = MessageCrypto(wx.cfg["token"], wx.cfg["aes_key"], "wx_someone_else")
    ts, nonce = str(int(time.time())), "42"
    encrypt = other.encrypt(wechat_xml(fields()))
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": sha1_signature(wx.cfg["token"], ts, nonce, encrypt)}  # fmt: skip
    res = wx.post_raw(query, wechat_xml({"ToUserName": "gh", "Encrypt": encrypt}))
    assert res.status == 403 and nothing_processed(app, db)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><Encrypt>unterminated",
        b"<other><Encrypt>x</Encrypt></other>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>',
        "<xml><Encrypt><![CDATA[中文]]></Encrypt></xml>".encode("gbk"),
    ],
)
def test_malformed_xml_is_refused(wx, app, db, body):
    query, _ = wx.signed_query(fields())
    res = wx.post_raw(query, body)
    assert 400 <= res.status < 500 and nothing_processed(app, db)


def test_signed_garbage_ciphertext_is_refused(wx, app, db):
    ts, nonce, encrypt = str(int(time.time())), "7", "QUJD" * 8
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": sha1_signature(wx.cfg["token"], ts, nonce, encrypt)}  # fmt: skip
    res = wx.post_raw(query, wechat_xml({"ToUserName": "gh", "Encrypt": encrypt}))
    assert res.status == 400 and nothing_processed(app, db)


def test_decrypted_body_without_sender_is_refused(wx, app, db):
    res = wx.post({"ToUserName": "gh", "MsgType": "text", "Content": "x"})
    assert res.status == 400 and nothing_processed(app, db)


def test_oversized_body_is_refused(wx, app, db):
    big = fields()
    big["Content"] = "字" * 40_000
    query, body = wx.signed_query(big)
    res = wx.post_raw(query, body)
    assert res.status == 413 and nothing_processed(app, db)


def test_missing_timestamp_is_refused(wx, app, db):
    query, body = wx.signed_query(fields())
    query.pop("timestamp")
    assert wx.post_raw(query, body).status == 400
    assert nothing_processed(app, db)


def test_messages_take_the_fast_lane_and_oversized_ones_go_to_flask(wx, app, db):
    lane = app.extensions["zhizhi"].lane
    before = lane.served
    res = wx.text("o-lane-user", "帮助")
    assert res.status == 200 and res.reply.get("MsgType") == "text" and res.text
    assert lane.served == before + 1
    big = fields()
    big["Content"] = "字" * 40_000  # over the bot's 64 KB, under MAX_CONTENT_LENGTH
    query, body = wx.signed_query(big)
    assert wx.post_raw(query, body).status == 413
    assert lane.served == before + 1  # refused by the Flask route, never read by the lane


def _nested(depth: int) -> bytes:
    return ("<xml>" + "<a>" * depth + "x" + "</a>" * depth + "<Encrypt>QUJD</Encrypt></xml>").encode()


@pytest.mark.parametrize("depth", [9, 5000])
def test_deeply_nested_xml_is_refused_before_any_signature_work(wx, app, db, depth):
    """The envelope is parsed before msg_signature is checked: nesting is bounded there,
    so an unsigned body cannot exhaust the parser's recursion."""
    query, _ = wx.signed_query(fields())
    res = wx.post_raw(query, _nested(depth))
    assert res.status == 400 and nothing_processed(app, db)


def test_deeply_nested_plaintext_message_is_refused(app, client, platforms, db, monkeypatch):
    plaintext_account(app, monkeypatch)
    h = WeChatHarness(app, client, platforms[0], mode="plain")
    query, _ = h.signed_query(fields())
    res = h.post_raw(query, _nested(5000))
    assert res.status == 400 and nothing_processed(app, db)


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_an_account_without_a_token_refuses_everything(app, client, platforms, db, monkeypatch, mode):
    """Without WECHAT_TOKEN a signature would be over an empty secret, which anyone can make."""
    if mode == "plain":
        plaintext_account(app, monkeypatch)
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "wechat", dict(settings.wechat, token=""))
    h = WeChatHarness(app, client, platforms[0], mode=mode)
    assert h.text("o_forged", "帮助").status == 503
    ts, nonce = str(int(time.time())), "1"
    signed = {"signature": sha1_signature("", ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "e"}
    got = client.get("/bot/wechat", query_string=signed)
    assert got.status_code == 503
    assert nothing_processed(app, db)


@pytest.mark.parametrize(
    ("msg_type", "extra"),
    [("video", {"MediaId": "m2", "ThumbMediaId": "t2"}),
     ("shortvideo", {"MediaId": "m3", "ThumbMediaId": "t3"}),
     ("link", {"Title": "标题", "Description": "描述", "Url": "https://example.com/a"}),
     ("file", {"Title": "a.pdf", "Description": "", "FileKey": "k", "FileMd5": "0" * 32, "FileTotalLen": 10}),
     ("voice", {"MediaId": "m4", "Format": "amr"})],
)  # fmt: skip
def test_every_message_type_gets_an_answer(wx, msg_type, extra):
    res = wx.message("o_types", msg_type, **extra)
    assert res.status == 200 and "没看懂" in res.text


def test_a_voice_message_is_read_by_its_recognition(wx):
    res = wx.message("o_voice", "voice", MediaId="m5", Format="amr", Recognition="帮助。")
    assert "您可以发送" in res.text


@pytest.mark.parametrize(
    ("event", "extra"),
    [("LOCATION", {"Latitude": "30.7", "Longitude": "120.5", "Precision": "65"}),
     ("TEMPLATESENDJOBFINISH", {"MsgID": 200163836, "Status": "success"}),
     ("VIEW", {"EventKey": "https://example.com"})],
)  # fmt: skip
def test_informational_events_are_answered_success(wx, event, extra):
    fields_ = wx._base("o_events", "event", None)
    fields_.update(Event=event, **extra)
    assert wx.post(fields_).success


def test_every_menu_key_gets_an_answer_not_help(wx):
    from bot.menu import MENU, menu_keys

    for key in menu_keys(MENU):
        res = wx.event("o_menu_keys", "CLICK", key)
        assert res.status == 200
        assert res.success or "没看懂" not in res.text, key


def test_a_scanned_number_is_verified_and_other_codes_are_explained(wx):
    def scan(result, at):  # events are deduplicated on CreateTime: one scan per second
        fields_ = wx._base("o_scanner", "event", at)
        fields_.update(Event="scancode_waitmsg", EventKey="VERIFY",
                       ScanCodeInfo={"ScanType": "qrcode", "ScanResult": result})  # fmt: skip
        return wx.post(fields_)

    now = int(time.time())
    assert "未找到编号为 ZZ-404 的通行证或许可证" in scan("ZZ-404", now - 1).text
    assert "无法识别该二维码" in scan("https://example.com/?x=1", now).text
