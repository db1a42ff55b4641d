"""Slow bot work as outbox jobs: customer-service replies and images (e.g. pass QR codes).

A dialog adds the row in the same unit of work as its answer; after the commit the job
replies through WeChat's customer-service API (allowed for 48 h after the user's last
message) or DingTalk's work notification. Sends are ``external_send``: a worker that
died mid-send is not re-run blindly (see jobs.runner).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from bot import outgoing
from bot.engine import Reply
from core import outbox
from core.platforms.http import PlatformError
from jobs.queues import NOTIFICATIONS
from jobs.registry import PermanentError, TransientError, job

#: image kind -> (session, payload) -> (png bytes, filename). Domain dialogs add theirs.
ImageRenderer = Callable[[Session, dict[str, Any]], tuple[bytes, str]]
IMAGE_RENDERERS: dict[str, ImageRenderer] = {}


def image_renderer(kind: str) -> Callable[[ImageRenderer], ImageRenderer]:
    def register(func: ImageRenderer) -> ImageRenderer:
        IMAGE_RENDERERS[kind] = func
        return func

    return register


@image_renderer("qr")
def render_qr(_session: Session, payload: dict[str, Any]) -> tuple[bytes, str]:
    """A plain QR code of ``payload["data"]`` (alphanumeric mode for base45 tokens)."""
    from jobs.render.qr import qr_png

    return qr_png(payload["data"]), "qr.png"


def _target(msg: Any) -> dict[str, str]:
    return {"channel": msg.channel, "app": msg.app, "to": msg.sender}


def enqueue_text(session: Session, msg: Any, text: str, key: str) -> int | None:
    """Send ``text`` to the sender of ``msg`` after the commit (once per ``key``)."""
    return enqueue_reply(session, msg, Reply(text=text), key)


def enqueue_reply(session: Session, msg: Any, reply: Reply, key: str) -> int | None:
    """Send ``reply`` (text, card or markdown: see bot.outgoing) to the sender of ``msg``
    after the commit (once per ``key``)."""
    body = {**_target(msg), "text": reply.text, "reply": reply.to_json(), **_asked(msg)}
    return outbox.add(session, "bot.reply", body, dedup_key=f"bot:{key}"[:200])


def _asked(msg: Any) -> dict[str, Any]:
    """What the late answer answers (DingTalk names it, see bot.outgoing)."""
    return {"asked": (msg.text or "")[:40], "asked_at": msg.created_at or 0}


def enqueue_image(session: Session, msg: Any, kind: str, key: str, **payload: Any) -> int | None:
    """Render an image of ``kind`` in a job, upload it and send it to the sender of ``msg``."""
    body = {**_target(msg), "render": kind, **payload}
    return outbox.add(session, "bot.image", body, dedup_key=f"bot:{key}"[:200])


def enqueue_command(session: Session, msg: Any, command: str, args: str) -> int | None:
    """Run the slow ``command`` for the sender of ``msg`` in a job that sends the answer."""
    body = {**_target(msg), "command": command, "args": args, "dedup": msg.dedup, "group": msg.group}
    body.update(_asked(msg))
    return outbox.add(session, "bot.command", body, dedup_key=f"bot:cmd:{msg.user_key}:{msg.dedup}"[:200])


def _ext() -> Any:
    from jobs.context import get_app

    return get_app().extensions["zhizhi"]


def _platform_call(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except PlatformError as exc:
        if exc.permanent:
            raise PermanentError(str(exc)) from exc
        raise TransientError(str(exc)) from exc


@job("bot.reply", queue=NOTIFICATIONS, external_send=True)
def send_reply(_session: Session, item: Any) -> dict[str, Any]:
    """Customer-service text (WeChat) or work notification (DingTalk) to one user."""
    p = item.payload
    reply = Reply.from_json(p["reply"]) if p.get("reply") else Reply(text=p["text"])
    return _send(_ext(), p, reply)


@job("bot.command", queue=NOTIFICATIONS, external_send=True)
def run_command(_session: Session, item: Any) -> dict[str, Any]:
    """A slow command (``router.command(slow=True)``): run it, then send its answer."""
    from bot.engine import Message, run_deferred

    p = item.payload
    ext = _ext()
    msg = Message(p["channel"], p["app"], p["to"], "text", p["dedup"], text=p["command"], group=p["group"])
    reply = run_deferred(ext, msg, p["command"], p["args"])
    if reply.silent or not reply.text:
        return {"sent": None}
    return _send(ext, {**p, "asked": p.get("asked", p["command"])}, reply)


def _send(ext: Any, p: dict[str, Any], reply: Reply) -> dict[str, Any]:
    if p["channel"] == "wechat":
        body = outgoing.wechat_custom(reply)
        if body["msgtype"] == "news":
            article = body["news"]["articles"][0]
            _platform_call(lambda: ext.wechat_oa().send_custom_news(p["to"], article))
            return {"sent": "custom_news"}
        _platform_call(lambda: ext.wechat_oa().send_custom_text(p["to"], body["text"]["content"]))
        return {"sent": "custom_text"}
    msg = outgoing.dingtalk_notification(reply, p.get("asked", ""), int(p.get("asked_at") or 0))
    task_id = _platform_call(lambda: ext.dingtalk().send_work_notification(p["to"], msg))
    return {"sent": "work_notification", "msgtype": msg["msgtype"], "task_id": task_id}


@job("bot.image", queue=NOTIFICATIONS, external_send=True)
def send_image(session: Session, item: Any) -> dict[str, Any]:
    """Render, upload as temporary media, then send as a customer-service image."""
    p = item.payload
    renderer = IMAGE_RENDERERS.get(p.get("render", ""))
    if renderer is None:
        raise PermanentError(f"no image renderer {p.get('render')!r}")
    png, filename = renderer(session, p)
    if p["channel"] != "wechat":
        raise PermanentError("images are sent on WeChat only")
    platform = _ext().wechat_oa()
    media_id = _platform_call(lambda: platform.upload_image(png, filename))
    _platform_call(lambda: platform.send_custom_image(p["to"], media_id))
    return {"media_id": media_id}
