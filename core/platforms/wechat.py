"""WeChat official account / mini-program client built on wechatpy.

wechatpy refreshes the access token without any lock and retries token errors
without bound; here the token comes from a Redis-shared TokenCache filled through
``POST /cgi-bin/stable_token`` and a token error is retried exactly once.
One WeChatPlatform serves one AppID: build one for the official account (template and
customer-service messages, media, menu) and one for the mini-program (code2session,
subscribe messages).
"""

from __future__ import annotations

import hashlib
import logging

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from core.platforms.http import (
    ERRCODE_BAD_RESPONSE,
    WECHAT_API,
    PlatformError,
    network_error,
)
from core.platforms.tokens import TokenCache

__all__ = ["PlatformError", "WeChatPlatform", "wechat_error"]

logger = logging.getLogger(__name__)

STABLE_TOKEN_URL = f"{WECHAT_API}/cgi-bin/stable_token"

# 40001 invalid credential, 40014 invalid access_token, 42001 access_token expired.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

TRANSIENT_ERRCODES = frozenset(
    {
        -1,  # system busy
        45009,  # api daily/minute quota reached
        45011,  # api minute-quota (jscode2session: 100/min per user)
    }
    | TOKEN_ERRCODES  # only raised after the one refresh-and-retry failed
)

PERMANENT_ERRCODES = frozenset(
    {
        40003,  # invalid openid
        40004,  # invalid media type
        40007,  # invalid media_id
        40008,  # invalid message type
        40009,  # invalid image size
        40016,  # invalid button size (menu)
        40029,  # invalid code (jscode2session)
        40037,  # invalid template_id
        40163,  # code been used
        40226,  # risky user blocked (jscode2session)
        41030,  # invalid page (subscribe)
        43004,  # require subscribe (template: user does not follow)
        43101,  # user refused to accept the subscribe message
        45015,  # response out of time limit (customer-service 48 h window closed)
        45047,  # customer-service message count exceeded for this window
        47001,  # data format error
        47003,  # argument invalid (template data)
        48001,  # api unauthorized
    }
)


def wechat_error(errcode: int, errmsg: str, *, ambiguous: bool = False) -> PlatformError:
    """A PlatformError classified by WeChat's errcode."""
    return PlatformError(
        errcode,
        errmsg,
        platform="wechat",
        transient=errcode in TRANSIENT_ERRCODES,
        permanent=errcode in PERMANENT_ERRCODES,
        ambiguous=ambiguous,
    )


def _template_data(data: dict) -> dict:
    """Accept ``{"thing1": "text"}`` as shorthand for ``{"thing1": {"value": "text"}}``."""
    return {k: v if isinstance(v, dict) else {"value": v} for k, v in data.items()}


class ZhizhiWeChatClient(WeChatClient):
    """wechatpy client whose token lives in a TokenCache and whose errors are typed."""

    # Endpoints authenticated by appid/secret in the query rather than by a token.
    NO_TOKEN_ENDPOINTS = frozenset({"sns/jscode2session"})

    def __init__(self, appid, secret, redis_client, http: requests.Session, token_key=None):
        super().__init__(
            appid,
            secret,
            session=RedisStorage(redis_client, prefix=f"zhizhi:wechatpy:{appid}"),
            auto_retry=False,
        )
        self._http = http
        self.token_cache = TokenCache(
            redis_client, token_key or f"zhizhi:wechat:access_token:{appid}", self._fetch_token
        )

    @property
    def access_token(self) -> str:
        return self.token_cache.get()

    def fetch_access_token(self) -> dict:
        """POST /cgi-bin/stable_token in normal mode; the result is not cached here."""
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": False,
        }
        try:
            res = self._http.post(STABLE_TOKEN_URL, json=body)
            res.raise_for_status()
            result = res.json()
        except ValueError as exc:
            raise wechat_error_bad_response(exc) from exc
        except requests.RequestException as exc:
            raise network_error("wechat", exc, "POST") from exc
        if result.get("errcode"):
            raise wechat_error(int(result["errcode"]), result.get("errmsg", ""))
        if not result.get("access_token"):
            raise wechat_error_bad_response(result)
        return result

    def _fetch_token(self) -> tuple[str, int]:
        result = self.fetch_access_token()
        return result["access_token"], int(result.get("expires_in", 7200))

    def _request(self, method, url_or_endpoint, **kwargs):
        endpoint = url_or_endpoint.split("?", 1)[0]
        needs_token = endpoint not in self.NO_TOKEN_ENDPOINTS
        for attempt in (1, 2):
            call = dict(kwargs)
            params = dict(call.get("params") or {})
            token = None
            if needs_token:
                token = self.token_cache.get()
                call["params"] = {**params, "access_token": token}
            else:
                # wechatpy adds access_token only to dict params; a list keeps it out.
                call["params"] = list(params.items())
            try:
                return super()._request(method, url_or_endpoint, **call)
            except WeChatClientException as exc:
                if exc.errcode is None:
                    cause = exc.__context__
                    if isinstance(cause, requests.RequestException):
                        raise network_error("wechat", cause, method) from exc
                    raise wechat_error_bad_response(exc) from exc
                errcode = int(exc.errcode)
                if needs_token and errcode in TOKEN_ERRCODES and attempt == 1:
                    logger.info("wechat token rejected (%s), refreshing once", errcode)
                    self.token_cache.invalidate(token)
                    continue
                raise wechat_error(errcode, str(exc.errmsg)) from exc
            except requests.RequestException as exc:
                raise network_error("wechat", exc, method) from exc
        raise AssertionError("unreachable")


def wechat_error_bad_response(detail) -> PlatformError:
    return PlatformError(
        ERRCODE_BAD_RESPONSE,
        f"unexpected response: {detail!r}"[:300],
        platform="wechat",
        transient=True,
    )


class WeChatPlatform:
    """The WeChat calls Zhizhi makes, with errors raised as classified PlatformError."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        redis_client,
        session: requests.Session,
        *,
        token_key: str | None = None,
    ) -> None:
        self.app_id = app_id
        self.client = ZhizhiWeChatClient(app_id, secret, redis_client, session, token_key)

    @property
    def tokens(self) -> TokenCache:
        return self.client.token_cache

    def code2session(self, js_code: str) -> dict:
        """Exchange a mini-program wx.login code; the session_key must stay server-side."""
        result = self.client.wxa.code_to_session(js_code)
        if not isinstance(result, dict) or not result.get("openid"):
            raise wechat_error_bad_response(result)
        return {
            "openid": result["openid"],
            "unionid": result.get("unionid") or None,
            "session_key": result.get("session_key"),
        }

    def send_template(
        self,
        openid: str,
        template_id: str,
        data: dict,
        url: str | None = None,
        miniprogram: dict | None = None,
        client_msg_id: str | None = None,
    ) -> int:
        """Official-account template message; returns WeChat's msgid.

        `miniprogram` is ``{"appid": ..., "pagepath": ...}``. `client_msg_id` is
        WeChat's own de-duplication id (same openid + id within 10 minutes is sent once);
        pass the notification's dedup key so a retry after a timeout cannot repeat.
        """
        body = {"touser": openid, "template_id": template_id, "data": _template_data(data)}
        if url:
            body["url"] = url
        if miniprogram:
            body["miniprogram"] = miniprogram
        if client_msg_id:
            # WeChat caps de-duplication ids at 64 bytes; longer keys are hashed to 64 hex.
            if len(client_msg_id.encode()) > 64:
                client_msg_id = hashlib.sha256(client_msg_id.encode()).hexdigest()
            body["client_msg_id"] = client_msg_id
        result = self.client.post("message/template/send", data=body)
        return int(result["msgid"])

    def send_subscribe(
        self,
        openid: str,
        template_id: str,
        data: dict,
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> None:
        """Mini-program subscribe message (one-time credit; 43101 when none is left).

        `miniprogram_state` is ``developer`` / ``trial`` / ``formal`` (WeChat's default).
        """
        body = {
            "touser": openid,
            "template_id": template_id,
            "data": _template_data(data),
            "lang": lang,
        }
        if page:
            body["page"] = page
        if miniprogram_state:
            body["miniprogram_state"] = miniprogram_state
        self.client.post("message/subscribe/send", data=body)

    def send_custom_text(self, openid: str, text: str) -> None:
        """Customer-service text, allowed within 48 h of the user's last message."""
        self.client.message.send_text(openid, text)

    def send_custom_news(self, openid: str, article: dict) -> None:
        """Customer-service news message of one article (``title``, ``description``,
        ``url``); WeChat allows one article per such message (errcode 45008 beyond)."""
        self.client.message.send_articles(openid, [article])

    def upload_image(self, png_bytes: bytes, filename: str = "image.png") -> str:
        """Upload a temporary image (kept 3 days by WeChat); returns its media_id."""
        result = self.client.media.upload("image", (filename, png_bytes, "image/png"))
        if not result.get("media_id"):
            raise wechat_error_bad_response(result)
        return result["media_id"]

    def send_custom_image(self, openid: str, media_id: str) -> None:
        """Customer-service image message (same 48 h window as text)."""
        self.client.message.send_image(openid, media_id)

    def create_menu(self, menu: dict) -> None:
        """Replace the official account's custom menu (``{"button": [...]}``)."""
        self.client.menu.create(menu)
