"""DingTalk (enterprise-internal app) client: login by auth code and work notifications.

Tokens come from ``GET https://oapi.dingtalk.com/gettoken`` (or, with
``auth_api="v1"``, ``POST https://api.dingtalk.com/v1.0/oauth2/accessToken``; both
tokens are accepted by the oapi endpoints) and are shared through a TokenCache.
"""

from __future__ import annotations

import hashlib
import json
import logging

import requests

from core.platforms.http import (
    DINGTALK_API,
    DINGTALK_OAPI,
    ERRCODE_BAD_RESPONSE,
    PlatformError,
    network_error,
)
from core.platforms.tokens import TokenCache

__all__ = ["DingTalkPlatform", "PlatformError", "content_fingerprint", "dingtalk_error"]

logger = logging.getLogger(__name__)

# 40014 invalid access_token, 42001 access_token expired; DingTalk also reports them
# as errcode 88 with the code in sub_code.
TOKEN_ERRCODES = frozenset({40014, 42001})

TRANSIENT_ERRCODES = frozenset(
    {
        -1,  # system busy: retry (DingTalk advises at most 3 times)
        90002,  # calls to this API from this server temporarily disabled (rate limit)
        90005,  # all calls from this server temporarily disabled (rate limit)
        90006,  # calls to this API temporarily disabled (rate limit)
        90018,  # calls from this organisation temporarily disabled (rate limit)
        143103,  # per-app send QPM exceeded
        143104,  # per-organisation send QPM exceeded
    }
    | TOKEN_ERRCODES
)

PERMANENT_ERRCODES = frozenset(
    {
        33012,  # invalid userid
        40035,  # invalid parameter
        40056,  # invalid agentid
        40078,  # temporary auth code does not exist (unknown, used or expired)
        60011,  # no permission for this API (usually errcode 88 + sub_code 60011)
        60121,  # user not found
        143105,  # per-user daily quota (500 for internal apps)
        143106,  # same content to the same user already sent today
        1430000,  # no receiver
        1430002,  # forbidden content
    }
)

MSG_TYPES = frozenset({"text", "image", "voice", "file", "link", "oa", "markdown", "action_card"})


def dingtalk_error(
    errcode: int, errmsg: str, sub_code: str | None = None, *, ambiguous: bool = False
) -> PlatformError:
    """A PlatformError classified by DingTalk's errcode (or sub_code for errcode 88)."""
    effective = errcode
    if errcode == 88 and sub_code and sub_code.lstrip("-").isdigit():
        effective = int(sub_code)
    return PlatformError(
        errcode,
        errmsg,
        platform="dingtalk",
        transient=effective in TRANSIENT_ERRCODES,
        permanent=effective in PERMANENT_ERRCODES,
        sub_code=sub_code,
        ambiguous=ambiguous,
    )


def _is_token_error(errcode: int, sub_code: str | None) -> bool:
    if errcode in TOKEN_ERRCODES:
        return True
    return errcode == 88 and sub_code is not None and sub_code in {"40014", "42001"}


def content_fingerprint(msg: dict) -> str:
    """Stable hash of a work-notification body.

    DingTalk silently drops a second message with the same content to the same user
    on the same day, so callers key their once-a-day check on this.
    """
    canonical = json.dumps(msg, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _bad_response(detail) -> PlatformError:
    return PlatformError(
        ERRCODE_BAD_RESPONSE,
        f"unexpected response: {detail!r}"[:300],
        platform="dingtalk",
        transient=True,
    )


class DingTalkPlatform:
    """The DingTalk calls Zhizhi makes; errors are raised as classified PlatformError."""

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        agent_id: int | str,
        redis_client,
        session: requests.Session,
        *,
        auth_api: str = "oapi",
        token_key: str | None = None,
    ) -> None:
        if auth_api not in ("oapi", "v1"):
            raise ValueError("auth_api must be 'oapi' or 'v1'")
        self.app_key = app_key
        self._app_secret = app_secret
        self.agent_id = int(agent_id)
        self._http = session
        self._auth_api = auth_api
        self.tokens = TokenCache(
            redis_client, token_key or f"zhizhi:dingtalk:access_token:{app_key}", self._fetch_token
        )

    # -- tokens ---------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, int]:
        if self._auth_api == "v1":
            return self._fetch_token_v1()
        result = self._send(
            "GET",
            f"{DINGTALK_OAPI}/gettoken",
            params={"appkey": self.app_key, "appsecret": self._app_secret},
        )
        return result["access_token"], int(result.get("expires_in", 7200))

    def _fetch_token_v1(self) -> tuple[str, int]:
        body = {"appKey": self.app_key, "appSecret": self._app_secret}
        try:
            res = self._http.post(f"{DINGTALK_API}/v1.0/oauth2/accessToken", json=body)
            result = res.json()
        except ValueError as exc:
            raise _bad_response(exc) from exc
        except requests.RequestException as exc:
            raise network_error("dingtalk", exc, "POST") from exc
        if res.status_code != 200 or not result.get("accessToken"):
            # New-style errors: HTTP 4xx/5xx with {"code", "message", "requestid"}.
            raise PlatformError(
                res.status_code,
                f"{result.get('code')}: {result.get('message')}",
                platform="dingtalk",
                transient=res.status_code >= 500 or res.status_code == 429,
                sub_code=result.get("code"),
            )
        return result["accessToken"], int(result.get("expireIn", 7200))

    # -- transport ------------------------------------------------------------------

    def _send(self, method: str, url: str, *, params=None, json_body=None) -> dict:
        try:
            res = self._http.request(method, url, params=params, json=json_body)
            res.raise_for_status()
            result = res.json()
        except ValueError as exc:
            raise _bad_response(exc) from exc
        except requests.RequestException as exc:
            raise network_error("dingtalk", exc, method) from exc
        if not isinstance(result, dict):
            raise _bad_response(result)
        errcode = int(result.get("errcode", 0))
        if errcode != 0:
            sub_code = result.get("sub_code")
            raise dingtalk_error(errcode, str(result.get("errmsg", "")), str(sub_code) if sub_code else None)
        return result

    def _call(self, path: str, body: dict) -> dict:
        """POST an oapi endpoint with the shared token, refreshing it once if rejected."""
        for attempt in (1, 2):
            token = self.tokens.get()
            try:
                return self._send(
                    "POST",
                    f"{DINGTALK_OAPI}{path}",
                    params={"access_token": token},
                    json_body=body,
                )
            except PlatformError as exc:
                if attempt == 1 and _is_token_error(exc.errcode, exc.sub_code):
                    logger.info("dingtalk token rejected (%s), refreshing once", exc.errcode)
                    self.tokens.invalidate(token)
                    continue
                raise
        raise AssertionError("unreachable")

    # -- API ------------------------------------------------------------------------

    def userid_by_auth_code(self, code: str) -> dict:
        """Resolve a mini-app / H5 免登 auth code to the user (codes are single use)."""
        result = self._call("/topapi/v2/user/getuserinfo", {"code": code}).get("result") or {}
        if not result.get("userid"):
            raise _bad_response(result)
        return {
            "userid": result["userid"],
            "unionid": result.get("unionid") or None,
            "name": result.get("name") or None,
        }

    def send_work_notification(self, userid: str, msg: dict) -> int:
        """Send a 工作通知 to one user; returns DingTalk's task_id.

        `msg` is DingTalk's message object, e.g. ``{"msgtype": "text", "text":
        {"content": ...}}`` or ``{"msgtype": "markdown", "markdown": {"title", "text"}}``.
        Success only means accepted: over-quota (500 per user per day) and same-content
        repeats are dropped silently and show up in `get_send_result`. Callers enforce
        both rules beforehand (see `content_fingerprint`).
        """
        msgtype = msg.get("msgtype")
        if msgtype not in MSG_TYPES or msgtype not in msg:
            raise ValueError(f"unsupported DingTalk message: msgtype={msgtype!r}")
        body = {"agent_id": self.agent_id, "userid_list": userid, "msg": msg}
        result = self._call("/topapi/message/corpconversation/asyncsend_v2", body)
        return int(result["task_id"])

    def get_send_result(self, task_id: int) -> dict:
        """The per-user outcome of a work notification (``send_result`` object)."""
        body = {"agent_id": self.agent_id, "task_id": int(task_id)}
        result = self._call("/topapi/message/corpconversation/getsendresult", body)
        return result.get("send_result") or {}
