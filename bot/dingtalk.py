"""DingTalk enterprise-internal robot HTTP callback: ``POST /bot/dingtalk``.

DingTalk signs each callback with headers ``timestamp`` (ms) and
``sign = Base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret))``; a timestamp
more than an hour away or a wrong sign is refused (constant-time comparison). The
reply is the response body: ``text``, ``markdown`` or ``actionCard`` JSON. In a group
the robot answers only when it is mentioned (``isInAtList``) and @-mentions the sender.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.engine import Message, Reply, handle
from bot.outgoing import fit_chars

bp = Blueprint("bot_dingtalk", __name__)

MAX_BODY = 64 * 1024
WINDOW_MS = 3600 * 1000  # DingTalk: "相差1小时以上，则认为是非法的请求"


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_signature(timestamp: str | None, given: str | None, secret: str, now_ms: int) -> None:
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        raise Refused(400, "missing or malformed timestamp header")
    if abs(now_ms - int(timestamp)) > WINDOW_MS:
        raise Refused(403, "timestamp outside the window")
    if not given or not secret:
        raise Refused(403, "bad sign")
    if not hmac.compare_digest(sign(timestamp, secret).encode(), given.strip().encode("utf-8", "replace")):
        raise Refused(403, "bad sign")


def _payload() -> dict[str, Any]:
    if (request.content_length or 0) > MAX_BODY:
        raise Refused(413, "body too large")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Refused(413, "body too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, "malformed JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "malformed JSON")
    return data


def _text_of(data: dict[str, Any]) -> str:
    """The text of a message; fields of the wrong JSON type read as no text."""
    kind = data.get("msgtype")
    content = data.get("content") if isinstance(data.get("content"), dict) else {}
    if kind == "text" and isinstance(data.get("text"), dict):
        text = data["text"].get("content")
        return text if isinstance(text, str) else ""
    if kind == "richText":
        parts = content.get("richText")
        if not isinstance(parts, list):
            return ""
        return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    if kind == "audio":
        text = content.get("recognition")
        return text if isinstance(text, str) else ""
    return ""


def to_message(data: dict[str, Any], app_key: str) -> Message:
    sender = data.get("senderStaffId") or data.get("senderId")
    msg_id = data.get("msgId")
    kind = data.get("msgtype")
    if not isinstance(sender, str) or not sender or not isinstance(msg_id, str) or not msg_id:
        raise Refused(400, "missing senderStaffId/senderId or msgId")
    if not isinstance(kind, str):
        raise Refused(400, "missing msgtype")
    created = data.get("createAt")
    return Message(
        "dingtalk",
        app_key,
        sender,
        kind.lower(),
        f"m:{msg_id}",
        text=_text_of(data),
        group=str(data.get("conversationType")) == "2",
        created_at=int(created) // 1000 if isinstance(created, int) else 0,
        raw=data,
    )


def render(reply: Reply, msg: Message) -> dict[str, Any]:
    if reply.silent:
        return {}
    if reply.buttons or reply.url:
        card: dict[str, Any] = {"title": reply.title or "智治", "text": fit_chars(reply.text)}
        if reply.buttons:
            card["btns"] = [{"title": t, "actionURL": u} for t, u in reply.buttons]
            card["btnOrientation"] = "0"
        else:
            card.update(singleTitle="查看详情", singleURL=reply.url)
        out: dict[str, Any] = {"msgtype": "actionCard", "actionCard": card}
    elif reply.markdown:
        out = {
            "msgtype": "markdown",
            "markdown": {"title": reply.title or "智治", "text": fit_chars(reply.text)},
        }
    else:
        out = {"msgtype": "text", "text": {"content": fit_chars(reply.text)}}
    if msg.group and msg.raw.get("senderStaffId"):
        out["at"] = {"atUserIds": [msg.raw["senderStaffId"]], "isAtAll": False}
        if out["msgtype"] == "text":
            out["text"]["content"] = f"@{msg.raw['senderStaffId']} " + out["text"]["content"]
    return out


@bp.post("/bot/dingtalk")
def receive() -> Response:
    cfg = current_app.extensions["zhizhi"].settings.dingtalk
    try:
        check_signature(
            request.headers.get("timestamp"),
            request.headers.get("sign"),
            cfg.get("app_secret") or "",
            int(time.time() * 1000),
        )
        data = _payload()
        msg = to_message(data, cfg.get("app_key") or "")
    except Refused as exc:
        current_app.logger.info("bot/dingtalk refused: %s", exc.reason)
        return Response(exc.reason, status=exc.status, mimetype="text/plain")
    if msg.group and data.get("isInAtList") is not True:
        return jsonify({})  # group chatter not addressed to the robot
    reply = handle(current_app.extensions["zhizhi"], msg)
    return jsonify(render(reply, msg))
