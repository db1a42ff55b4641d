"""WeChat official-account callback: ``GET/POST /bot/wechat``.

Modes (chosen by the account's setting, seen in the query): plaintext (``signature``
over token/timestamp/nonce), compatible and safe (``encrypt_type=aes``:
``msg_signature`` over token/timestamp/nonce/Encrypt, AES body, encrypted reply).
Every bad request is refused with a 4xx before anything is processed: a timestamp
outside the window, a bad signature, a wrong AppID inside the ciphertext, malformed
or oversized XML.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import unquote_plus

import werkzeug.urls  # noqa: F401 (registers the "werkzeug.url_quote" decoding error handler)
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from flask import Blueprint, Response, current_app, request
from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, UnknownMessage
from wechatpy.replies import ArticlesReply

from bot.crypto import CryptoError, MessageCrypto, signature_matches
from bot.engine import Message, Reply, handle
from bot.outgoing import fit_bytes

bp = Blueprint("bot_wechat", __name__)

MAX_BODY = 64 * 1024  # WeChat messages are a few KB; anything bigger is not WeChat
DEFAULT_WINDOW = 300


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _config() -> dict[str, Any]:
    return current_app.extensions["zhizhi"].settings.wechat


_KEEP = "werkzeug.url_quote"


def query_args(environ: dict[str, Any]) -> dict[str, str]:
    """The query string's fields (the first of a repeated name), decoded as werkzeug's
    ``request.args`` (UTF-8, "+" a space, invalid bytes kept percent-encoded) without
    its parsing layers and MultiDict: WeChat's query is a handful of ASCII fields."""
    query = environ.get("QUERY_STRING") or ""
    if not query.isascii():  # PEP 3333: raw bytes arrive as latin-1 characters
        query = query.encode("latin-1", "replace").decode("utf-8", "replace")
    out: dict[str, str] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name, errors=_KEEP), unquote_plus(value, errors=_KEEP)
        out.setdefault(name, value)
    return out


_cryptos: dict[tuple[str, str, str], MessageCrypto] = {}


def crypto_for(cfg: dict[str, Any]) -> MessageCrypto:
    key = (cfg.get("token") or "", cfg.get("aes_key") or "", cfg.get("app_id") or "")
    crypto = _cryptos.get(key)
    if crypto is None:
        try:
            crypto = _cryptos[key] = MessageCrypto(*key)
        except ValueError:
            raise Refused(503, "safe mode is not configured") from None
    return crypto


def _check_time(timestamp: str | None, cfg: dict[str, Any]) -> str:
    window = int(cfg.get("timestamp_window") or DEFAULT_WINDOW)
    if not timestamp or not _digits(timestamp) or len(timestamp) > 12:
        raise Refused(400, "missing or malformed timestamp")
    if abs(time.time() - int(timestamp)) > window:
        raise Refused(403, "timestamp outside the window")
    return timestamp


def _token(cfg: dict[str, Any]) -> str:
    """The account's Token; without one every signature would be over an empty secret."""
    token = cfg.get("token")
    if not token:
        raise Refused(503, "WECHAT_TOKEN is not configured")
    return token


def _check_plain_signature(args: dict[str, str], cfg: dict[str, Any]) -> tuple[str, str]:
    token = _token(cfg)
    timestamp = _check_time(args.get("timestamp"), cfg)
    nonce = args.get("nonce") or ""
    if not signature_matches(args.get("signature"), token, timestamp, nonce):
        raise Refused(403, "bad signature")
    return timestamp, nonce


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body straight from ``wsgi.input``: at most ``MAX_BODY`` bytes, a
    longer one (announced or sent) refused with 413. Without a Content-Length only a
    server that marks the input as terminated (chunked bodies) gives one, as werkzeug."""
    length = environ.get("CONTENT_LENGTH")
    kept = environ.get("zhizhi.body")  # read by core.fastlane (Content-Length <= MAX_BODY)
    if kept is not None:
        if len(kept) != int(length or 0):
            raise Refused(400, "body shorter than its Content-Length")
        return kept
    stream = environ["wsgi.input"]
    if length:
        if not _digits(length):
            raise Refused(400, "malformed Content-Length")
        n = int(length)
        if n > MAX_BODY:
            raise Refused(413, "body too large")
        data = stream.read(n)
        if len(data) != n:
            raise Refused(400, "body shorter than its Content-Length")
        return data
    if not environ.get("wsgi.input_terminated"):
        return b""
    data = stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise Refused(413, "body too large")
    return data


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """WeChat XML to a dict (nested elements become dicts); DTDs and entities refused."""
    flat = parse_flat(data)
    if flat is not None:
        return flat
    try:
        root = safe_fromstring(data.encode("utf-8") if isinstance(data, str) else data, forbid_dtd=True)
    except ET.ParseError:
        raise Refused(400, "malformed XML") from None
    except DefusedXmlException:
        raise Refused(400, "DTDs and entities are not accepted") from None
    if root.tag != "xml":
        raise Refused(400, "not a WeChat message")
    fields = _element(root, 0)
    return fields if isinstance(fields, dict) else {}  # <xml>text</xml>: no fields


# The safe-mode envelope WeChat sends, matched whole (so only well-formed XML passes);
# anything else (compatible mode, extra fields, odd spacing) goes through the parser.
_ENVELOPE = re.compile(
    r"\s*<xml>\s*(?:<ToUserName><!\[CDATA\[[^\]<>&]*\]\]></ToUserName>\s*)?"
    r"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]{1,65536})\]\]></Encrypt>\s*"
    r"(?:<AgentID><!\[CDATA\[[^\]<>&]*\]\]></AgentID>\s*)?</xml>\s*"
)


def parse_envelope(data: bytes) -> dict[str, Any]:
    """The outer safe-mode document: a fast exact match, else the full parser."""
    m = _ENVELOPE.fullmatch(data.decode("utf-8", "replace")) if len(data) < MAX_BODY else None
    if m:
        return {"Encrypt": m.group(1)}
    return parse_xml(data)


# A flat WeChat document (every field a CDATA section or plain text, no markup, no
# entities), as WeChat sends text messages and most events, is read by regular
# expressions into the same dict the parser would build; anything else (nested fields,
# entities, comments, a DTD, characters XML forbids, "\r" which XML turns into "\n")
# returns None and goes through the parser, which accepts or refuses it. CDATA content
# and text never contain "]]>".
_HIGH = r"\u005e-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"  # XML characters from "^" up
_IN_CDATA = rf"[\t\n\u0020-\u005c{_HIGH}]"  # an XML character, not "]" (nor "\r")
_IN_TEXT = rf"[\t\n\u0020-\u0025\u0027-\u003b\u003d-\u005c{_HIGH}]"  # nor "&" or "<"
_CDATA = rf"<!\[CDATA\[({_IN_CDATA}*(?:\](?!\]>){_IN_CDATA}*)*)\]\]>"
_TEXT = rf"({_IN_TEXT}*(?:\](?!\]>){_IN_TEXT}*)*)"
_FIELD = re.compile(rf"[ \t\n]*<([A-Za-z_][A-Za-z0-9_]{{0,63}})>(?:{_CDATA}|{_TEXT})</\1>")
_OPEN = re.compile(r"[ \t\n]*<xml>")
_CLOSE = re.compile(r"[ \t\n]*</xml>[ \t\n]*")


def parse_flat(data: bytes | str) -> dict[str, Any] | None:
    """The fields of a flat WeChat document, or None when it is not one (see above)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    m = _OPEN.match(data) if len(data) <= MAX_BODY else None
    if m is None:
        return None
    out: dict[str, Any] = {}
    pos, field = m.end(), _FIELD.match
    while (m := field(data, pos)) is not None:
        out[m.group(1)] = (m.group(2) or m.group(3) or "").strip()
        pos = m.end()
    return out if _CLOSE.fullmatch(data, pos) else None


MAX_DEPTH = 8  # WeChat's deepest documents (SendPicsInfo/PicList/item/PicMd5Sum) have 4 levels


def _element(node: ET.Element, depth: int = 0) -> Any:
    children = list(node)
    if not children:
        return (node.text or "").strip()
    if depth >= MAX_DEPTH:
        raise Refused(400, "XML nested too deeply")
    out: dict[str, Any] = {}
    for child in children:
        out[child.tag] = _element(child, depth + 1)
    return out


def typed_message(data: dict[str, Any]) -> Any:
    """The wechatpy message/event object for ``data`` (same dispatch as parse_message)."""
    msg_type = str(data.get("MsgType") or "").lower()
    if msg_type == "event":
        event = str(data.get("Event") or "").lower()
        key = str(data.get("EventKey") or "")
        if event == "subscribe" and key.startswith("qrscene_"):
            data = {**data, "Event": "subscribe_scan", "EventKey": key[len("qrscene_") :]}
            event = "subscribe_scan"
        return EVENT_TYPES.get(event, UnknownMessage)(data)
    return MESSAGE_TYPES.get(msg_type, UnknownMessage)(data)


def to_message(data: dict[str, Any], app_id: str) -> Message:
    sender = str(data.get("FromUserName") or "")
    msg_type = str(data.get("MsgType") or "").lower()
    if not sender or not msg_type:
        raise Refused(400, "missing FromUserName or MsgType")
    created = str(data.get("CreateTime") or "0")
    if msg_type == "event":
        typed = typed_message(data)  # normalizes subscribe-with-scene to subscribe_scan
        event = str(typed._data.get("Event") or "").lower()
        key = str(typed._data.get("EventKey") or "")
        dedup = f"e:{created}:{event}:{key}"
        return Message(
            "wechat", app_id, sender, "event", dedup, event=event, event_key=key,
            created_at=_int(created), raw=typed._data,
        )  # fmt: skip
    text = ""
    if msg_type == "text":
        text = str(data.get("Content") or "")
    elif msg_type == "voice":
        text = str(data.get("Recognition") or "")  # speech recognition, when enabled
    msg_id = str(data.get("MsgId") or data.get("MsgID") or "")
    dedup = f"m:{msg_id}" if msg_id else f"e:{created}:{msg_type}:"
    return Message("wechat", app_id, sender, msg_type, dedup, text=text, created_at=_int(created), raw=data)


def _int(value: str) -> int:
    return int(value) if _digits(value) else 0


def _digits(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` refuses."""
    return value.isascii() and value.isdigit()


def _safe(text: str) -> str:
    return text.replace("]]>", "]]]]><![CDATA[>")


def render(reply: Reply, data: dict[str, Any]) -> str:
    """Passive reply XML (or ``success``) for the message ``data``."""
    if reply.silent:
        return "success"
    source, target = str(data.get("ToUserName") or ""), str(data.get("FromUserName") or "")
    if reply.url:
        # A fresh list: wechatpy's add_article would append to the field's shared default.
        article = {
            "title": _safe(fit_bytes(reply.title or "详情", 256)),
            "description": _safe(fit_bytes(reply.text)),
            "url": reply.url,
        }
        return ArticlesReply(source=source, target=target, articles=[article]).render()
    # Same XML as wechatpy's TextReply, without its field machinery (this is the hot path).
    return (
        f"<xml><ToUserName><![CDATA[{_safe(target)}]]></ToUserName>"
        f"<FromUserName><![CDATA[{_safe(source)}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{_safe(fit_bytes(reply.text))}]]></Content></xml>"
    )


def _refusal(exc: Refused) -> Response:
    current_app.logger.info("bot/wechat refused: %s", exc.reason)
    return Response(exc.reason, status=exc.status, mimetype="text/plain")


TEXT_TYPE, XML_TYPE = "text/plain; charset=utf-8", "application/xml; charset=utf-8"


@bp.get("/bot/wechat")
def verify() -> Response:
    args = query_args(request.environ)
    try:
        _check_plain_signature(args, _config())
    except Refused as exc:
        return _refusal(exc)
    return Response(args.get("echostr", ""), content_type=TEXT_TYPE)


@bp.post("/bot/wechat")
def receive() -> Response:
    return receive_environ(request.environ)


def receive_environ(environ: dict[str, Any]) -> Response:
    """``POST /bot/wechat`` on the WSGI environ (also served by core.fastlane)."""
    ext = current_app.extensions["zhizhi"]
    cfg = ext.settings.wechat
    args = query_args(environ)
    try:
        aes = args.get("encrypt_type", "raw").lower() == "aes"
        if aes:
            _token(cfg)
            timestamp = _check_time(args.get("timestamp"), cfg)
            nonce = args.get("nonce") or ""
        elif cfg.get("aes_key"):
            # With an EncodingAESKey the account is in compatible or safe mode and WeChat
            # always sends encrypt_type=aes; a plaintext signature does not cover the body.
            raise Refused(403, "plaintext messages refused: the account uses safe mode")
        else:
            timestamp, nonce = _check_plain_signature(args, cfg)
        body = read_body(environ)
        if aes:
            crypto = crypto_for(cfg)
            data = _decrypt(parse_envelope(body), crypto, args.get("msg_signature"), timestamp, nonce)
        else:
            data = parse_xml(body)
        msg = to_message(data, cfg.get("app_id") or "")
    except Refused as exc:
        return _refusal(exc)
    reply = handle(ext, msg)
    body = render(reply, data)
    if aes and not reply.silent:
        body = crypto.encrypt_reply(body, nonce, str(int(time.time())))
    return Response(body, content_type=TEXT_TYPE if reply.silent else XML_TYPE)


def _decrypt(
    outer: dict[str, Any], crypto: MessageCrypto, signature: str | None, timestamp: str, nonce: str
) -> dict[str, Any]:
    encrypt = outer.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise Refused(400, "missing Encrypt")
    if not crypto.check(signature, timestamp, nonce, encrypt):
        raise Refused(403, "bad msg_signature")
    try:
        inner = crypto.decrypt(encrypt)
    except CryptoError as exc:
        raise Refused(403 if exc.code == "app_id_mismatch" else 400, exc.code) from None
    return parse_xml(inner)
