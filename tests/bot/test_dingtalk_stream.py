"""DingTalk Stream mode: the official dingtalk-stream SDK, run by bot.dingtalk_stream,
against a fake gateway speaking the Stream protocol over a real WebSocket."""

from __future__ import annotations

import json
import threading

import pytest

from bot import dingtalk_stream
from tests.bot.harness import DingTalkHarness, bot_keys
from tests.fakes.dingtalk_stream import ROBOT_TOPIC, FakeStreamGateway


@pytest.fixture
def gateway(platforms):
    g = FakeStreamGateway(platforms[1])
    yield g
    g.stop()


@pytest.fixture
def stream(app, gateway):
    stop = threading.Event()
    worker = threading.Thread(target=dingtalk_stream.run, args=(app, stop), daemon=True)
    worker.start()
    gateway.wait_connected()
    yield gateway
    stop.set()
    worker.join(timeout=15)
    assert not worker.is_alive(), "the stream client did not stop"


def _message(app, client, userid, content, session, **kw):
    payload = DingTalkHarness(app, client).payload(userid, content, **kw)
    payload["sessionWebhook"] = f"https://oapi.dingtalk.com/robot/sendBySession?session={session}"
    return payload


def test_a_robot_message_is_answered_through_its_session_webhook_once(app, client, stream):
    """The SDK subscribes to robot messages; the answer goes to the session webhook and the
    frame is acknowledged; the same msgId redelivered is acknowledged, not answered again."""
    assert {"type": "CALLBACK", "topic": ROBOT_TOPIC} in stream.subscriptions
    payload = _message(app, client, "staff_stream_1", "帮助", "s1")

    ack = stream.wait_ack(stream.push_robot_message(payload))
    assert ack["code"] == 200 and json.loads(ack["data"]) == {"response": "OK"}
    (answer,) = stream.replies("s1")
    assert answer["msgtype"] == "text"
    assert "每日一练" in answer["text"]["content"] or "绑定" in answer["text"]["content"]

    again = stream.wait_ack(stream.push_robot_message(payload))  # DingTalk redelivers
    assert again["code"] == 200
    assert len(stream.replies("s1")) == 1


def test_group_chatter_is_acknowledged_and_mentions_are_answered_with_an_at(app, client, stream):
    quiet = _message(app, client, "staff_stream_2", "大家好", "s2", group=True, at=False)
    assert stream.wait_ack(stream.push_robot_message(quiet))["code"] == 200
    assert stream.replies("s2") == []

    asked = _message(app, client, "staff_stream_2", "帮助", "s3", group=True, at=True)
    assert stream.wait_ack(stream.push_robot_message(asked))["code"] == 200
    (answer,) = stream.replies("s3")
    assert answer["at"] == {"atUserIds": ["staff_stream_2"], "isAtAll": False}


def test_malformed_messages_and_foreign_webhooks_are_acknowledged_and_never_answered(app, client, stream):
    no_sender = _message(app, client, "staff_stream_3", "帮助", "s4")
    del no_sender["senderStaffId"], no_sender["senderId"]
    assert stream.wait_ack(stream.push_robot_message(no_sender))["code"] == 200

    elsewhere = _message(app, client, "staff_stream_3", "帮助", "s5")
    elsewhere["sessionWebhook"] = (
        f"{stream.dingtalk.base_url}/robot/sendBySession?session=s5"  # not DingTalk's
    )
    assert stream.wait_ack(stream.push_robot_message(elsewhere))["code"] == 200
    assert stream.replies("s4") == [] and stream.replies("s5") == []


def test_a_wrong_secret_gets_no_connection(app, platforms, gateway, monkeypatch):
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "dingtalk", dict(settings.dingtalk, app_secret="not-the-secret"))
    assert dingtalk_stream.make_client(app).open_connection() is None
    (call,) = platforms[1].calls("/v1.0/gateway/connections/open")
    assert call["json"]["clientSecret"] == "not-the-secret"
    assert not bot_keys(app)


def test_stream_mode_needs_the_apps_key_and_secret(app, monkeypatch):
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "dingtalk", dict(settings.dingtalk, app_key=None, app_secret=None))
    with pytest.raises(SystemExit, match="DINGTALK_APP_KEY"):
        dingtalk_stream.make_client(app)


def test_an_answer_the_session_webhook_refuses_goes_out_as_a_work_notification(
    app, client, stream, platforms, run_jobs
):
    platforms[1].fail_next("/robot/sendBySession", 310000, "sessionWebhook invalid")
    payload = _message(app, client, "staff_stream_4", "帮助", "s6")
    assert stream.wait_ack(stream.push_robot_message(payload))["code"] == 200
    run_jobs()
    (sent,) = [m for m in platforms[1].delivered if m["userid"] == "staff_stream_4"]
    assert "您可以发送" in sent["msg"]["text"]["content"]


def test_a_refused_answer_to_a_sender_without_a_staff_id_is_not_queued(app, client, platforms, db):
    """Work notifications are addressed by staff id: without one nothing is queued that
    could only fail (an outside contact has a senderId only)."""
    from models.platform import OutboxItem

    platforms[1].fail_next("/robot/sendBySession", 310000, "sessionWebhook invalid")
    payload = _message(app, client, "staff_stream_5", "帮助", "s7")
    del payload["senderStaffId"]
    payload["senderId"] = "$:LWCP_v1:$outside_contact"
    handler = dingtalk_stream.RobotHandler(app)
    assert handler.answer(payload) == "undeliverable"
    assert db.query(OutboxItem).filter(OutboxItem.kind == "bot.reply").count() == 0
