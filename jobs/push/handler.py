"""``push.send``: deliver one notification, record the platform's answer.

Outcomes: sent (message id recorded); permanent platform error (40003 bad openid,
43101 refused, 45015 window closed without a fallback ...) or a refusal by our own
limits → the notification and its outbox row are failed once with the reason, no
retry; transient error (-1, 45009, network) → the runner retries with backoff. A
request that may have reached the platform (read timeout) is not retried: a second
send could deliver twice (WeChat template messages excepted: their ``client_msg_id``
makes WeChat drop the repeat).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import update

from core.db import utcnow
from core.platforms.http import PlatformError
from jobs.push.kinds import push_kind
from jobs.push.transports import PushRefused, transport_for
from jobs.queues import NOTIFICATIONS
from jobs.registry import PermanentError, TransientError, job
from models.jobs import Channel, Notification, NotificationStatus, SubscriptionCredit

ERR_REFUSED = 43101  # user refused / no subscribe credit left
ERR_WINDOW_CLOSED = 45015  # customer-service 48 h window closed


def _mark_failed(session, item, reason: str) -> None:
    """on_failure hook: the notification records the same reason as its outbox row."""
    n = session.get(Notification, (item.payload or {}).get("notification_id"))
    if n is None or n.status == NotificationStatus.sent:
        return
    n.status, n.error = NotificationStatus.failed, reason[:2000]
    if n.channel == Channel.wechat_subscribe and reason.startswith(f"wechat {ERR_REFUSED}:"):
        # WeChat says no consent is left; our count must say so too. This runs after the
        # handler's transaction (which held the credit row) was rolled back.
        session.execute(
            update(SubscriptionCredit)
            .where(
                SubscriptionCredit.person_id == n.person_id, SubscriptionCredit.template_id == n.template_id
            )
            .values(credits=0, updated_at=utcnow())
        )


@job("push.send", queue=NOTIFICATIONS, external_send=True, max_attempts=5, on_failure=_mark_failed)
def send_notification(session, item) -> dict[str, Any]:
    n = session.get(Notification, (item.payload or {}).get("notification_id"))
    if n is None:
        raise PermanentError("通知记录不存在（可能已被删除），未发送")
    if n.status == NotificationStatus.sent:
        return {"skipped": "already_sent", "msgid": n.platform_msg_id}
    ext = current_app.extensions["zhizhi"]
    now = utcnow()
    if n.channel == Channel.wechat_subscribe:
        _spend_credit(session, n)
    try:
        msgid = _send(ext, n, now)
    except PushRefused as exc:
        raise PermanentError(exc.reason) from exc
    except PlatformError as exc:
        raise _classify(n, exc) from exc
    n.status, n.platform_msg_id, n.sent_at, n.error = NotificationStatus.sent, msgid, now, None
    return {"channel": n.channel.value, "msgid": msgid}


def _send(ext: Any, n: Notification, now) -> str | None:
    try:
        return transport_for(ext, n.channel).send(n, now)
    except PlatformError as exc:
        fallback = push_kind(n.kind).oa_template_id
        if n.channel == Channel.wechat_custom and exc.errcode == ERR_WINDOW_CLOSED and fallback:
            # Outside the 48 h window: the same person (official-account openid) gets a template.
            n.channel, n.template_id = Channel.wechat_template, fallback
            return transport_for(ext, n.channel).send(n, now)
        raise


def _spend_credit(session, n: Notification) -> None:
    spent = session.execute(
        update(SubscriptionCredit)
        .where(
            SubscriptionCredit.person_id == n.person_id,
            SubscriptionCredit.template_id == n.template_id,
            SubscriptionCredit.credits > 0,
        )
        .values(credits=SubscriptionCredit.credits - 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent != 1:
        raise PermanentError("用户没有剩余的订阅消息授权（需在小程序内重新订阅），未发送")


def _classify(n: Notification, exc: PlatformError) -> Exception:
    reason = f"{exc.platform} {exc.errcode}: {exc.errmsg}"[:500]
    if exc.permanent:
        return PermanentError(reason)
    if exc.ambiguous and n.channel != Channel.wechat_template:
        return PermanentError(f"{reason}（请求可能已送达，为避免重复发送未重试）")
    return TransientError(reason)
