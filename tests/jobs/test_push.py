"""Push notifications through the real runner against the fake WeChat/DingTalk servers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from core.db import utcnow
from jobs.runner import run_item
from models.identity import Identity, IdentityKind
from models.jobs import Channel, Notification, NotificationStatus, SubscriptionCredit
from models.platform import OutboxItem, OutboxStatus
from services.notify import NO_CHANNEL, accept_subscriptions, notify
from tests.helpers import make_person
from tests.jobs.kinds import DATA

OPENID = "oOA_user_1"
MP_OPENID = "oMP_user_1"
DT_USER = "ding_user_1"


def _person(db, **ids: str):
    p = make_person(db, "citizen")
    for kind, ext_id in ids.items():
        db.add(Identity(person_id=p.id, kind=IdentityKind(kind), app_id="app", external_id=ext_id))
    db.flush()
    return p


def _outbox(db, n: Notification) -> OutboxItem:
    db.expire_all()
    return db.scalars(select(OutboxItem).where(OutboxItem.dedup_key == f"push:{n.dedup_key}")).one()


def _reload(db, n: Notification) -> Notification:
    db.expire_all()
    return db.get(Notification, n.id)


def test_template_message_is_sent_once_with_its_msgid_recorded(app, db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(OPENID)
    p = _person(db, wechat_oa=OPENID)
    n = notify(db, p.id, "test.reminder", DATA, "expiry:1:7")
    again = notify(db, p.id, "test.reminder", DATA, "expiry:1:7")
    db.commit()
    assert again.id == n.id and n.channel == Channel.wechat_template
    run_jobs()
    sent = wechat.messages("template", OPENID)
    assert len(sent) == 1 and sent[0]["body"]["data"]["thing1"] == {"value": "危化品运输许可"}
    row = _reload(db, n)
    assert row.status == NotificationStatus.sent and row.platform_msg_id == str(sent[0]["msgid"])
    assert run_item(app, _outbox(db, n).id) == "already_done"
    assert len(wechat.messages("template")) == 1


def test_invalid_openid_40003_is_recorded_once_without_retry(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    p = _person(db, wechat_oa="o_unknown")
    n = notify(db, p.id, "test.reminder", DATA, "expiry:2:7")
    db.commit()
    run_jobs()
    item = _outbox(db, n)
    assert item.status == OutboxStatus.failed and item.attempts == 1 and "40003" in item.last_error
    assert _reload(db, n).status == NotificationStatus.failed and "40003" in _reload(db, n).error
    assert len(wechat.calls("/cgi-bin/message/template/send")) == 1


def test_subscribe_message_spends_one_credit(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.grant_subscription(MP_OPENID, "TPL_MP_EXPIRY")
    p = _person(db, wechat_mp=MP_OPENID, wechat_oa=OPENID)
    assert accept_subscriptions(db, p.id, ["TPL_MP_EXPIRY"]) == {"TPL_MP_EXPIRY": 1}
    n = notify(db, p.id, "test.reminder", DATA, "expiry:3:7")
    db.commit()
    assert n.channel == Channel.wechat_subscribe
    run_jobs()
    assert _reload(db, n).status == NotificationStatus.sent
    assert len(wechat.messages("subscribe", MP_OPENID)) == 1
    assert db.scalar(select(SubscriptionCredit.credits).where(SubscriptionCredit.person_id == p.id)) == 0


def test_without_credit_the_template_channel_is_used(db, platforms) -> None:
    p = _person(db, wechat_mp=MP_OPENID, wechat_oa=OPENID)
    n = notify(db, p.id, "test.reminder", DATA, "expiry:4:7")
    assert n.channel == Channel.wechat_template and n.recipient == OPENID


def test_refused_subscription_43101_zeroes_the_credit_once(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(MP_OPENID)  # no consent on WeChat's side
    p = _person(db, wechat_mp=MP_OPENID)
    accept_subscriptions(db, p.id, ["TPL_MP_EXPIRY", "TPL_MP_EXPIRY"])
    accept_subscriptions(db, p.id, ["TPL_MP_EXPIRY"])
    n = notify(db, p.id, "test.reminder", DATA, "expiry:5:7")
    db.commit()
    run_jobs()
    item = _outbox(db, n)
    assert item.status == OutboxStatus.failed and item.attempts == 1 and "43101" in item.last_error
    assert db.scalar(select(SubscriptionCredit.credits).where(SubscriptionCredit.person_id == p.id)) == 0
    assert len(wechat.calls("/cgi-bin/message/subscribe/send")) == 1


def test_transient_busy_is_retried_with_backoff_then_sent(app, db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(OPENID)
    wechat.fail_next("/cgi-bin/message/template/send", -1, "system error")
    p = _person(db, wechat_oa=OPENID)
    n = notify(db, p.id, "test.reminder", DATA, "expiry:6:7")
    db.commit()
    run_jobs(rounds=1)
    item = _outbox(db, n)
    assert item.status == OutboxStatus.pending and item.next_attempt_at > utcnow() and "-1" in item.last_error
    item.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert run_item(app, item.id) == "done"
    assert len(wechat.messages("template")) == 1 and _reload(db, n).status == NotificationStatus.sent


def test_rate_limit_45009_is_transient(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(OPENID)
    wechat.fail_next("/cgi-bin/message/template/send", 45009, "reach max api daily quota limit")
    n = notify(db, _person(db, wechat_oa=OPENID).id, "test.reminder", DATA, "expiry:7:7")
    db.commit()
    run_jobs(rounds=1)
    assert _outbox(db, n).status == OutboxStatus.pending


def test_customer_service_outside_48h_falls_back_to_template(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(OPENID)  # never messaged the account: the 48 h window is closed
    p = _person(db, wechat_oa=OPENID)
    n = notify(db, p.id, "test.custom_fallback", {**DATA, "result": "通过"}, "r:1")
    db.commit()
    assert n.channel == Channel.wechat_custom
    run_jobs()
    row = _reload(db, n)
    assert row.status == NotificationStatus.sent and row.channel == Channel.wechat_template
    assert len(wechat.messages("template", OPENID)) == 1 and not wechat.messages("custom")


def test_customer_service_within_48h_is_sent_as_text(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.touch_user(OPENID)
    p = _person(db, wechat_oa=OPENID)
    n = notify(db, p.id, "test.custom_only", {"name": "李四", "body": "你好"}, "c:1")
    db.commit()
    run_jobs()
    assert _reload(db, n).status == NotificationStatus.sent
    assert wechat.messages("custom", OPENID)[0]["body"]["text"]["content"] == "消息\n李四：你好"


def test_customer_service_outside_48h_without_template_is_recorded(db, platforms, run_jobs) -> None:
    wechat, _ = platforms
    wechat.add_user(OPENID)
    p = _person(db, wechat_oa=OPENID)
    n = notify(db, p.id, "test.custom_only", {"name": "李四", "body": "你好"}, "c:2")
    db.commit()
    run_jobs()
    item = _outbox(db, n)
    assert item.status == OutboxStatus.failed and item.attempts == 1 and "45015" in item.last_error


def test_dingtalk_same_content_reaches_a_user_once_a_day(db, platforms, run_jobs) -> None:
    _, ding = platforms
    p = _person(db, dingtalk=DT_USER)
    first = notify(db, p.id, "test.reminder", DATA, "d:1")
    second = notify(db, p.id, "test.reminder", DATA, "d:2")  # same text, other key
    db.commit()
    run_jobs()
    assert _reload(db, first).status == NotificationStatus.sent
    assert _reload(db, first).platform_msg_id == str(ding.delivered[0]["task_id"])
    assert _reload(db, second).status == NotificationStatus.failed
    assert "每天限一次" in _reload(db, second).error and _outbox(db, second).attempts == 1
    assert len(ding.calls("/topapi/message/corpconversation/asyncsend_v2")) == 1


def test_dingtalk_500_per_user_per_day_is_enforced_before_calling(app, db, platforms, run_jobs) -> None:
    _, ding = platforms
    ext = app.extensions["zhizhi"]
    day = utcnow().astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    ext.redis.set(f"zhizhi:dingtalk:{ding.app_key}:{DT_USER}:{day}:count", 500)
    n = notify(db, _person(db, dingtalk=DT_USER).id, "test.reminder", DATA, "d:3")
    db.commit()
    run_jobs()
    assert "500" in _reload(db, n).error and _outbox(db, n).status == OutboxStatus.failed
    assert not ding.calls("/topapi/message/corpconversation/asyncsend_v2")


def test_console_transport_records_without_platform_credentials(app, db, monkeypatch, run_jobs) -> None:
    settings = app.extensions["zhizhi"].settings
    monkeypatch.setattr(settings, "wechat", {**settings.wechat, "app_id": None, "app_secret": None})
    n = notify(db, _person(db, wechat_oa=OPENID).id, "test.reminder", DATA, "console:1")
    db.commit()
    run_jobs()
    row = _reload(db, n)
    assert row.status == NotificationStatus.sent and row.platform_msg_id == f"console-{n.id}"


def test_person_without_any_identity_is_recorded_and_not_queued(db) -> None:
    n = notify(db, _person(db).id, "test.reminder", DATA, "none:1")
    assert n.status == NotificationStatus.failed and n.error == NO_CHANNEL
    assert db.scalar(select(func.count()).select_from(OutboxItem)) == 0


def test_job_for_a_deleted_notification_fails_once_with_the_reason(app, db, platforms) -> None:
    n = notify(db, _person(db, wechat_oa=OPENID).id, "test.reminder", DATA, "gone:1")
    db.commit()
    item = _outbox(db, n)
    db.delete(db.get(Notification, n.id))
    db.commit()
    assert run_item(app, item.id) == "failed"
    assert run_item(app, item.id) == "already_failed"
    item = _outbox(db, n)
    assert item.attempts == 1 and "已被删除" in item.last_error


def test_dingtalk_busy_frees_the_daily_slot_so_the_retry_is_sent(app, db, platforms, run_jobs) -> None:
    _, ding = platforms
    ding.fail_next("/topapi/message/corpconversation/asyncsend_v2", -1, "系统繁忙")
    n = notify(db, _person(db, dingtalk=DT_USER).id, "test.reminder", DATA, "d:4")
    db.commit()
    run_jobs(rounds=1)
    item = _outbox(db, n)
    assert item.status == OutboxStatus.pending
    item.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert run_item(app, item.id) == "done"
    assert len(ding.delivered) == 1 and _reload(db, n).status == NotificationStatus.sent
