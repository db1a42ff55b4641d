"""DingTalk Stream mode: ``python -m bot.dingtalk_stream`` (``make dingtalk-stream``).

The second inbound path for the DingTalk robot, for deployments that cannot expose an
HTTPS callback: the official ``dingtalk-stream`` SDK opens a connection
(``POST /v1.0/gateway/connections/open`` with the app's key and secret, then a WebSocket
to the endpoint it is given) and receives robot messages on the topic
``/v1.0/im/bot/messages/get``. Each message is the same JSON the HTTP callback gets, so
it goes through the same ``bot.dingtalk.to_message`` → ``bot.engine.handle`` →
``bot.dingtalk.render``; the answer is posted to the message's ``sessionWebhook`` (only
to DingTalk's own origin; when that fails or has expired, it goes out as a work
notification job instead), and the frame is acknowledged after that. A redelivered frame
(same ``msgId``) is acknowledged without a second answer.

Settings: ``DINGTALK_APP_KEY`` / ``DINGTALK_APP_SECRET`` (the robot's app), and
``DINGTALK_API_BASE`` also moves the gateway (tests point it at a fake).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import dingtalk_stream
import websockets.exceptions  # noqa: F401 - the SDK's reconnect loop names it without importing it
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage

from bot.dingtalk import Refused, render, to_message
from bot.engine import handle

log = logging.getLogger("zhizhi.bot.dingtalk_stream")

GATEWAY_PATH = "/v1.0/gateway/connections/open"
WEBHOOK_ORIGINS = ("https://oapi.dingtalk.com", "https://api.dingtalk.com")


class RobotHandler(dingtalk_stream.ChatbotHandler):
    """Robot messages from the stream, answered by the dialog engine."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.logger = log

    async def process(self, callback: CallbackMessage) -> tuple[int, str]:
        # The engine is synchronous (Redis, the database): keep it off the event loop.
        await asyncio.to_thread(self.answer, callback.data)
        return AckMessage.STATUS_OK, "OK"

    def answer(self, data: Any) -> str:
        """Handle one robot message; what happened, for logs and tests."""
        ext = self.app.extensions["zhizhi"]
        with self.app.app_context():
            if not isinstance(data, dict):
                log.info("dingtalk stream: refused a frame whose data is not an object")
                return "refused"
            try:
                msg = to_message(data, ext.settings.dingtalk.get("app_key") or "")
            except Refused as exc:
                log.info("dingtalk stream: refused: %s", exc.reason)
                return "refused"
            if msg.group and data.get("isInAtList") is not True:
                return "ignored"  # group chatter not addressed to the robot
            reply = handle(ext, msg)
            if reply.replayed:
                return "duplicate"  # answered when it first came
            body = render(reply, msg)
            if not body:
                return "silent"
            outcome = self._post(ext, data, body)
            if outcome in ("failed", "expired") and reply.text:
                return self._notify_instead(ext, msg, reply) or outcome
            return outcome

    def _notify_instead(self, ext: Any, msg: Any, reply: Any) -> str | None:
        """The session webhook did not take the answer: send it as a work notification
        (card and markdown answers keep their form, see bot.outgoing). Work notifications
        are addressed by staff id: a sender DingTalk names only by its ``senderId`` (an
        outside contact) cannot get one, and the answer is dropped with a log line."""
        from bot.jobs import enqueue_reply

        if not msg.raw.get("senderStaffId"):
            log.warning("dingtalk stream: no senderStaffId, the answer cannot go out as a work notification")
            return "undeliverable"
        session = ext.db.sessionmaker()
        try:
            enqueue_reply(session, msg, reply, key=f"stream:{msg.user_key}:{msg.dedup}")
            ext.commit(session)
        except Exception:  # logged; the frame is acknowledged either way
            log.exception("dingtalk stream: could not queue the answer as a work notification")
            session.rollback()
        finally:
            session.close()

    def _post(self, ext: Any, data: dict[str, Any], body: dict[str, Any]) -> str:
        url = data.get("sessionWebhook")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or f"{parts.scheme}://{parts.netloc}".lower() not in WEBHOOK_ORIGINS:
            log.warning("dingtalk stream: no DingTalk sessionWebhook on the message; answer dropped")
            return "no_webhook"
        expires = data.get("sessionWebhookExpiredTime")
        if isinstance(expires, int) and expires < time.time() * 1000:
            log.warning("dingtalk stream: sessionWebhook expired; answer dropped")
            return "expired"
        try:
            res = ext.http_session().post(url, json=body, timeout=(3, 5))
            result = res.json()
        except Exception as exc:  # noqa: BLE001 - the frame is still acknowledged: no redelivery loop
            log.warning("dingtalk stream: posting the answer failed (%s)", type(exc).__name__)
            return "failed"
        if result.get("errcode") not in (0, None):
            log.warning("dingtalk stream: sessionWebhook refused the answer: %s", result.get("errcode"))
            return "failed"
        return "answered"


def make_client(app: Any) -> dingtalk_stream.DingTalkStreamClient:
    cfg = app.extensions["zhizhi"].settings.dingtalk
    if not cfg.get("app_key") or not cfg.get("app_secret"):
        raise SystemExit("DINGTALK_APP_KEY and DINGTALK_APP_SECRET are needed for Stream mode")
    client = dingtalk_stream.DingTalkStreamClient(
        dingtalk_stream.Credential(cfg["app_key"], cfg["app_secret"]), logger=log
    )
    # The SDK reads the gateway address from its class (set from DINGTALK_OPENAPI_ENDPOINT
    # at import): one client per process, so the class attribute is the setting.
    base = (cfg.get("api_base") or "https://api.dingtalk.com").rstrip("/")
    dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API = base + GATEWAY_PATH
    client.register_callback_handler(ChatbotMessage.TOPIC, RobotHandler(app))
    return client


async def _serve(client: dingtalk_stream.DingTalkStreamClient, stop: threading.Event) -> None:
    task = asyncio.create_task(client.start())  # the SDK's loop: connect, receive, reconnect
    while not stop.is_set() and not task.done():
        await asyncio.sleep(0.2)
    while not task.done():  # the SDK catches one cancellation to reconnect: repeat it
        task.cancel()
        await asyncio.wait([task], timeout=0.5)


def run(app: Any, stop: threading.Event) -> None:
    """Receive and answer robot messages until ``stop`` is set."""
    asyncio.run(_serve(make_client(app), stop))


def main() -> None:
    from jobs.context import get_app

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(get_app(), stop)


if __name__ == "__main__":
    main()
