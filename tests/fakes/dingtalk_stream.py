"""Fake DingTalk Stream gateway, for the official ``dingtalk-stream`` SDK.

As DingTalk's Stream protocol has it: ``POST /v1.0/gateway/connections/open`` (on the
fake DingTalk server) checks ``clientId`` / ``clientSecret`` and answers a WebSocket
``endpoint`` with a one-time ``ticket``; the WebSocket (``endpoint?ticket=...``) carries
frames ``{"specVersion", "type": "CALLBACK"|"SYSTEM", "headers": {"messageId",
"topic", ...}, "data": "<JSON text>"}`` to the client and the client's ACKs
``{"code", "headers": {"messageId"}, "message", "data"}`` back. Robot answers posted to
a message's ``sessionWebhook`` (``/robot/sendBySession?session=...``) are kept per
session.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from urllib.parse import parse_qs, urlsplit

from websockets.sync.server import serve

from tests.fakes.server import error, ok

ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
REPLY_TYPES = {"text": "content", "markdown": "text", "actionCard": "text"}


class FakeStreamGateway:
    def __init__(self, dingtalk) -> None:
        self.dingtalk = dingtalk
        self.acks: dict[str, dict] = {}
        self.subscriptions: list[dict] = []
        self._tickets: set[str] = set()
        self._connection = None
        self._cond = threading.Condition()
        self._server = serve(self._session, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-dingtalk-stream", daemon=True
        )
        self._thread.start()
        dingtalk.route("/v1.0/gateway/connections/open", self._open, ("POST",))
        dingtalk.route("/robot/sendBySession", self._send_by_session, ("POST",))

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # -- HTTP ----------------------------------------------------------------------

    def _open(self, req: dict):
        body = req["json"] or {}
        if (
            body.get("clientId") != self.dingtalk.app_key
            or body.get("clientSecret") != self.dingtalk.app_secret
        ):
            return 401, {"code": "InvalidAuthentication", "message": "clientId or clientSecret is invalid"}
        self.subscriptions = list(body.get("subscriptions") or [])
        ticket = secrets.token_urlsafe(16)
        with self._cond:
            self._tickets.add(ticket)
        return {"endpoint": f"ws://127.0.0.1:{self.port}/connect", "ticket": ticket}

    def _send_by_session(self, req: dict) -> dict:
        body = req["json"] or {}
        field = REPLY_TYPES.get(body.get("msgtype"))
        if field is None:
            return error(400105, "不支持的消息类型")
        if not str((body.get(body["msgtype"]) or {}).get(field) or "").strip():
            return error(40035, "缺少参数 json")
        return ok()

    def replies(self, session: str) -> list[dict]:
        return [
            r["json"]
            for r in self.dingtalk.calls("/robot/sendBySession")
            if r["query"].get("session") == session
        ]

    # -- WebSocket -----------------------------------------------------------------

    def _session(self, ws) -> None:
        ticket = (parse_qs(urlsplit(ws.request.path).query).get("ticket") or [""])[0]
        with self._cond:
            if ticket not in self._tickets:
                ws.close(1008, "invalid ticket")
                return
            self._tickets.discard(ticket)  # one connection per ticket
            self._connection = ws
            self._cond.notify_all()
        try:
            for raw in ws:
                frame = json.loads(raw)
                with self._cond:
                    self.acks[frame["headers"]["messageId"]] = frame
                    self._cond.notify_all()
        except Exception:  # noqa: BLE001 - the client went away: the test sees no ACK
            return
        finally:
            with self._cond:
                if self._connection is ws:
                    self._connection = None

    def wait_connected(self, timeout: float = 15) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._connection is not None, timeout):
                raise AssertionError("the stream client did not connect")

    def push_robot_message(self, data: dict) -> str:
        """One robot message as a CALLBACK frame; returns its frame messageId."""
        message_id = secrets.token_hex(8)
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": self.dingtalk.app_key,
                "connectionId": "conn-1",
                "contentType": "application/json",
                "messageId": message_id,
                "time": str(int(time.time() * 1000)),
                "topic": ROBOT_TOPIC,
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        with self._cond:
            connection = self._connection
        if connection is None:
            raise AssertionError("no stream client is connected")
        connection.send(json.dumps(frame, ensure_ascii=False))
        return message_id

    def wait_ack(self, message_id: str, timeout: float = 15) -> dict:
        with self._cond:
            if not self._cond.wait_for(lambda: message_id in self.acks, timeout):
                raise AssertionError(f"no ACK for frame {message_id}")
            return self.acks[message_id]
