"""DingTalk robot callback: sign and window, 1:1 and group, reply JSON, refusals."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from bot.dingtalk import sign
from models.platform import OutboxItem
from tests.bot.harness import bot_keys


def nothing_processed(app, db) -> bool:
    return not bot_keys(app) and db.scalar(select(func.count()).select_from(OutboxItem)) == 0


def test_sign_matches_the_documented_construction():
    import base64
    import hashlib
    import hmac

    ts, secret = "1577262236757", "this is a secret"
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    )
    assert sign(ts, secret) == expected.decode()


def test_one_to_one_text_is_answered_with_text_json(dt):
    res = dt.text("staff01", "帮助")
    assert res.status == 200
    assert res.body["msgtype"] == "text"
    assert "您可以发送" in res.text
    assert "at" not in res.body


def test_group_message_not_mentioning_the_robot_is_ignored(dt, app, db):
    res = dt.text("staff02", "帮助", group=True, at=False)
    assert res.status == 200 and res.body == {}
    assert nothing_processed(app, db)


def test_group_message_mentioning_the_robot_is_answered_and_mentions_the_sender(dt):
    res = dt.text("staff03", "帮助", group=True, at=True)
    assert res.body["msgtype"] == "text"
    assert res.body["at"]["atUserIds"] == ["staff03"]
    assert res.text.startswith("@staff03 ")


def test_same_msgid_twice_gets_the_same_reply(dt):
    payload = dt.payload("staff04", "你好")
    first, second = dt.post(payload), dt.post(payload)
    assert first.body == second.body and "没看懂" in first.text


def test_rich_text_and_audio_recognition_are_read_as_text(dt):
    rich = dt.payload("staff05", "")
    rich.pop("text")
    rich.update(
        msgtype="richText", content={"richText": [{"text": "帮"}, {"downloadCode": "x"}, {"text": "助"}]}
    )
    assert "您可以发送" in dt.post(rich).text
    audio = dt.payload("staff05", "")
    audio.pop("text")
    audio.update(msgtype="audio", content={"recognition": "帮助", "duration": 2})
    assert "您可以发送" in dt.post(audio).text
    picture = dt.payload("staff05", "")
    picture.pop("text")
    picture.update(msgtype="picture", content={"downloadCode": "abc"})
    assert "没看懂" in dt.post(picture).text


def test_bad_sign_is_refused(dt, app, db):
    res = dt.post(dt.payload("staff06", "帮助"), headers=dt.headers(secret="wrong"))
    assert res.status == 403 and nothing_processed(app, db)
    res = dt.post(dt.payload("staff06", "帮助"), headers={"timestamp": str(int(time.time() * 1000))})
    assert res.status == 403 and nothing_processed(app, db)


@pytest.mark.parametrize("skew_ms", [-3_601_000, 3_601_000])
def test_timestamp_more_than_an_hour_away_is_refused(dt, app, db, skew_ms):
    ts = str(int(time.time() * 1000) + skew_ms)
    res = dt.post(dt.payload("staff07", "帮助"), headers=dt.headers(timestamp=ts))
    assert res.status == 403 and nothing_processed(app, db)


def test_timestamp_within_the_hour_is_accepted(dt):
    ts = str(int(time.time() * 1000) - 3_500_000)
    assert dt.post(dt.payload("staff08", "帮助"), headers=dt.headers(timestamp=ts)).status == 200


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[1,2,3]", b'"text"', b'{"msgtype": "text"}', b"\xff\xfe{}",
     b'{"msgId": 5, "senderStaffId": "u", "msgtype": "text"}'],
)  # fmt: skip
def test_malformed_json_is_refused(dt, app, db, body):
    res = dt.post(body)
    assert res.status == 400 and nothing_processed(app, db)


def test_missing_timestamp_header_is_refused(dt, app, db):
    res = dt.post(dt.payload("staff09", "帮助"), headers={"sign": "x"})
    assert res.status == 400 and nothing_processed(app, db)


def test_oversized_body_is_refused(dt, app, db):
    payload = dt.payload("staff10", "帮" * 70_000)
    res = dt.post(payload)
    assert res.status == 413 and nothing_processed(app, db)


@pytest.mark.parametrize("timestamp", ["²", "١٧٠٠٠٠٠٠٠٠٠٠٠"])
def test_a_timestamp_header_of_other_digits_than_ascii_ones_is_refused(dt, app, db, timestamp):
    res = dt.post(dt.payload("staff11", "帮助"), headers=dt.headers(timestamp=timestamp))
    assert res.status == 400 and nothing_processed(app, db)


def test_deeply_nested_json_is_refused(dt, app, db):
    res = dt.post(b"[" * 20_000)
    assert res.status == 400 and nothing_processed(app, db)


@pytest.mark.parametrize(
    "shape",
    [{"msgtype": "richText", "content": {"richText": 5}},
     {"msgtype": "richText", "content": {"richText": [{"text": 7}, "x"]}},
     {"msgtype": "audio", "content": {"recognition": ["帮助"]}},
     {"msgtype": "text", "text": {"content": {"a": 1}}}],
)  # fmt: skip
def test_fields_of_the_wrong_type_read_as_no_text_and_get_help(dt, shape):
    payload = {**dt.payload("staff12", "帮助"), **shape}
    if shape["msgtype"] != "text":
        payload.pop("text")
    res = dt.post(payload)
    assert res.status == 200
    assert "没看懂" in res.text or "您可以发送" in res.text


@pytest.mark.parametrize("typed", ["积分", "每日一练", "我的通行证", "证照", "绑定 AB12CD34"])
def test_personal_commands_in_a_group_ask_for_a_private_chat(dt, app, db, typed):
    res = dt.text("staff13", typed, group=True, at=True)
    assert res.status == 200 and "请在与机器人的单聊中使用" in res.text
    assert res.body["at"]["atUserIds"] == ["staff13"]


def test_a_private_flow_is_not_fed_by_group_messages(dt):
    assert "请发送绑定码" in dt.text("staff14", "绑定").text  # 1:1: the binding flow starts
    in_group = dt.text("staff14", "帮助", group=True, at=True)
    assert "您可以发送" in in_group.text  # answered as help, not taken as a binding code
    assert "绑定码格式不对" in dt.text("staff14", "XYZ").text  # back in 1:1 the flow is still there
