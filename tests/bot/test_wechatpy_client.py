"""The endpoint driven by a client that is not ours: wechatpy's WeChatCrypto (a port of
the published WXBizMsgCrypt) encrypts and signs what WeChat would send, and decrypts,
checks and parses what we answer. None of bot.crypto or the harness's crypto is used."""

from __future__ import annotations

import time

import pytest
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

OPENID = "o_wechatpy_client"


def _inbound(crypto: WeChatCrypto, inner: str, nonce: str) -> tuple[dict[str, str], str]:
    """What WeChat posts in safe mode: ``<xml><ToUserName/><Encrypt/></xml>`` with the
    signature, timestamp and nonce in the query string."""
    ts = int(time.time())
    sealed = xmltodict.parse(crypto.encrypt_message(inner, nonce, ts))["xml"]
    query = {
        "timestamp": str(ts),
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": sealed["MsgSignature"],
    }
    body = (
        "<xml><ToUserName><![CDATA[gh_zhizhi]]></ToUserName>"
        f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
    )
    return query, body


def _text(msg_id: int, content: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[gh_zhizhi]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


@pytest.fixture
def crypto(wx):
    return WeChatCrypto(wx.cfg["token"], wx.cfg["aes_key"], wx.cfg["app_id"])


def test_a_wechatpy_encrypted_message_gets_a_reply_wechatpy_decrypts_and_parses(wx, client, crypto):
    query, body = _inbound(crypto, _text(7_000_001, "帮助"), nonce="1357924680")
    res = client.post("/bot/wechat", query_string=query, data=body, content_type="text/xml")
    assert res.status_code == 200
    outer = xmltodict.parse(res.get_data())["xml"]
    assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}

    # decrypt_message checks MsgSignature over (token, TimeStamp, Nonce, Encrypt) and the AppID
    plain = crypto.decrypt_message(
        res.get_data(as_text=True), outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    reply = parse_message(plain)
    assert reply.type == "text"
    assert reply.source == "gh_zhizhi" and reply.target == OPENID  # From/To swapped back
    assert "每日一练" in reply.content or "绑定" in reply.content
    assert abs(int(reply.create_time.timestamp()) - int(time.time())) < 60

    # the reply is bound to its own signature: one changed character is refused by wechatpy
    forged = ("0" if outer["MsgSignature"][0] != "0" else "1") + outer["MsgSignature"][1:]
    with pytest.raises(InvalidSignatureException):
        crypto.decrypt_message(res.get_data(as_text=True), forged, outer["TimeStamp"], outer["Nonce"])


def test_a_message_sealed_for_another_account_is_refused(wx, client):
    other = WeChatCrypto(wx.cfg["token"], wx.cfg["aes_key"], "wx_some_other_app")
    query, body = _inbound(other, _text(7_000_002, "帮助"), nonce="2468013579")
    res = client.post("/bot/wechat", query_string=query, data=body, content_type="text/xml")
    assert 400 <= res.status_code < 500


def test_url_verification_passes_wechatpys_signature_check(wx, client):
    """The GET handshake: our echo is accepted only for a signature wechatpy computes too."""
    import hashlib

    ts, nonce = str(int(time.time())), "24680"
    signature = hashlib.sha1(  # noqa: S324 - WeChat's documented signature is SHA-1
        "".join(sorted([wx.cfg["token"], ts, nonce])).encode()
    ).hexdigest()
    check_signature(wx.cfg["token"], signature, ts, nonce)  # wechatpy agrees it is valid
    res = client.get(
        "/bot/wechat",
        query_string={"signature": signature, "timestamp": ts, "nonce": nonce, "echostr": "9988"},
    )
    assert res.status_code == 200 and res.get_data(as_text=True) == "9988"
