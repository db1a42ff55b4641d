"""Drive the bot like the platforms do: signed (and AES-encrypted) WeChat XML and signed
DingTalk callbacks posted through the app; replies decrypted and checked; jobs run;
what the fake platform servers received read back."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import MessageCrypto, sha1_signature
from bot.dingtalk import sign as dingtalk_sign
from bot.wechat import parse_xml

_ids = itertools.count(int(time.time()) * 1000)


def wechat_xml(fields: dict[str, Any]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        elif isinstance(value, dict):
            parts.append(f"<{name}>{wechat_xml(value)[5:-6]}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class WxResult:
    status: int
    body: str
    reply: dict[str, Any] = field(default_factory=dict)  # decrypted, parsed passive reply

    @property
    def text(self) -> str:
        if self.reply.get("MsgType") == "news":
            item = self.reply["Articles"]["item"]
            return f"{item['Title']}\n{item['Description']}"
        return str(self.reply.get("Content", ""))

    @property
    def success(self) -> bool:
        return self.status == 200 and self.body == "success"


class WeChatHarness:
    """``mode``: "safe" (AES only), "compatible" (AES + plaintext fields), "plain"."""

    def __init__(self, app: Any, client: Any, fake: Any = None, mode: str = "safe") -> None:
        self.app, self.client, self.fake, self.mode = app, client, fake, mode

    @property
    def cfg(self) -> dict[str, Any]:
        return self.app.extensions["zhizhi"].settings.wechat

    @property
    def crypto(self) -> MessageCrypto:
        c = self.cfg
        return MessageCrypto(c["token"], c["aes_key"], c["app_id"])

    # -- messages -------------------------------------------------------------------

    def text(self, openid: str, content: str, msg_id: int | None = None, **kw: Any) -> WxResult:
        fields = self._base(openid, "text", kw.pop("create_time", None))
        fields.update(Content=content, MsgId=msg_id if msg_id is not None else next(_ids))
        return self.post(fields, **kw)

    def event(self, openid: str, event: str, key: str | None = None, **kw: Any) -> WxResult:
        fields = self._base(openid, "event", kw.pop("create_time", None))
        fields["Event"] = event
        if key is not None:
            fields["EventKey"] = key
        return self.post(fields, **kw)

    def message(self, openid: str, msg_type: str, **fields: Any) -> WxResult:
        base = self._base(openid, msg_type, None)
        base.update(fields)
        base.setdefault("MsgId", next(_ids))
        return self.post(base)

    def _base(self, openid: str, msg_type: str, create_time: int | None) -> dict[str, Any]:
        if self.fake is not None:
            self.fake.touch_user(openid)
        return {
            "ToUserName": "gh_zhizhi",
            "FromUserName": openid,
            "CreateTime": create_time or int(time.time()),
            "MsgType": msg_type,
        }

    def slow(self, openid: str, content: str, run_jobs: Any) -> str:
        """A slow command: the passive answer is ``success``; its job sends the answer as a
        customer-service text, returned here."""
        before = len(self.sent_texts(openid))
        res = self.text(openid, content)
        assert res.success, f"expected the passive answer success, got {res.status} {res.text!r}"
        run_jobs()
        texts = self.sent_texts(openid)
        assert len(texts) == before + 1, texts
        return texts[-1]

    # -- what the fake WeChat server received ------------------------------------------

    def sent(self, openid: str) -> list[dict[str, Any]]:
        """Customer-service messages (text, image, ...) the fake delivered to ``openid``."""
        assert self.fake is not None, "pass the fake WeChat server"
        return [m["body"] for m in self.fake.messages("custom", openid)]

    def sent_texts(self, openid: str) -> list[str]:
        return [b["text"]["content"] for b in self.sent(openid) if b["msgtype"] == "text"]

    # -- transport ------------------------------------------------------------------

    def signed_query(self, body_fields: dict[str, Any], timestamp: str | None = None,
                     nonce: str | None = None) -> tuple[dict[str, str], str]:  # fmt: skip
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        token = self.cfg["token"]
        query = {"timestamp": timestamp, "nonce": nonce, "openid": str(body_fields.get("FromUserName", ""))}
        query["signature"] = sha1_signature(token, timestamp, nonce)
        plain = wechat_xml(body_fields)
        if self.mode == "plain":
            return query, plain
        encrypt = self.crypto.encrypt(plain)
        query.update(encrypt_type="aes", msg_signature=sha1_signature(token, timestamp, nonce, encrypt))
        outer = {"ToUserName": body_fields.get("ToUserName", ""), "Encrypt": encrypt}
        if self.mode == "compatible":
            outer = {**body_fields, "Encrypt": encrypt}
        return query, wechat_xml(outer)

    def post(self, fields: dict[str, Any], timestamp: str | None = None, **kw: Any) -> WxResult:
        query, body = self.signed_query(fields, timestamp)
        return self.post_raw(query, body, **kw)

    def post_raw(self, query: dict[str, str], body: str | bytes, **kw: Any) -> WxResult:
        res = self.client.post("/bot/wechat", query_string=query, data=body,
                               content_type="text/xml", **kw)  # fmt: skip
        text = res.get_data(as_text=True)
        result = WxResult(res.status_code, text)
        if res.status_code == 200 and text and text != "success":
            result.reply = self.open_reply(text, query.get("nonce", ""))
        return result

    def open_reply(self, text: str, nonce: str) -> dict[str, Any]:
        outer = parse_xml(text.encode())
        if "Encrypt" not in outer:
            assert self.mode == "plain", "safe/compatible mode must answer encrypted"
            return outer
        assert outer["Nonce"] == nonce
        expected = sha1_signature(self.cfg["token"], outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
        assert outer["MsgSignature"] == expected, "reply signature does not verify"
        return parse_xml(self.crypto.decrypt(outer["Encrypt"]).encode())


@dataclass
class DtResult:
    status: int
    body: Any

    @property
    def text(self) -> str:
        b = self.body or {}
        kind = b.get("msgtype")
        if kind == "text":
            return b["text"]["content"]
        if kind == "markdown":
            return b["markdown"]["text"]
        if kind == "actionCard":
            return b["actionCard"]["text"]
        return ""


class DingTalkHarness:
    def __init__(self, app: Any, client: Any) -> None:
        self.app, self.client = app, client

    @property
    def cfg(self) -> dict[str, Any]:
        return self.app.extensions["zhizhi"].settings.dingtalk

    def payload(self, userid: str, content: str, *, group: bool = False, at: bool = True,
                msg_id: str | None = None) -> dict[str, Any]:  # fmt: skip
        now = int(time.time() * 1000)
        return {
            "conversationId": "cid_group" if group else f"cid_{userid}",
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}] if group and at else [],
            "chatbotCorpId": "dingcorp",
            "chatbotUserId": "$:LWCP_v1:$bot",
            "msgId": msg_id or f"msg{next(_ids)}",
            "senderNick": "测试",
            "isAdmin": False,
            "senderStaffId": userid,
            "sessionWebhookExpiredTime": now + 5400_000,
            "createAt": now,
            "senderCorpId": "dingcorp",
            "conversationType": "2" if group else "1",
            "senderId": f"$:LWCP_v1:${userid}",
            "conversationTitle": "网格群" if group else "",
            "isInAtList": bool(group and at),
            "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x",
            "text": {"content": f" {content}"},
            "msgtype": "text",
        }

    def headers(self, timestamp: str | None = None, secret: str | None = None) -> dict[str, str]:
        timestamp = timestamp or str(int(time.time() * 1000))
        return {"timestamp": timestamp, "sign": dingtalk_sign(timestamp, secret or self.cfg["app_secret"])}

    def text(self, userid: str, content: str, **kw: Any) -> DtResult:
        return self.post(self.payload(userid, content, **kw))

    def post(self, payload: Any, headers: dict[str, str] | None = None) -> DtResult:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload, ensure_ascii=False)
        res = self.client.post("/bot/dingtalk", data=body, headers=headers or self.headers(),
                               content_type="application/json")  # fmt: skip
        parsed = res.get_json(silent=True)
        return DtResult(res.status_code, parsed if parsed is not None else res.get_data(as_text=True))


def bot_keys(app: Any) -> list[bytes]:
    """Every key the bot wrote in Redis (dedup, state, locks)."""
    return list(app.extensions["zhizhi"].redis.scan_iter(match="bot:*"))
