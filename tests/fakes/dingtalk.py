"""Fake oapi.dingtalk.com / api.dingtalk.com: tokens, auth codes, work notifications.

Work notifications behave like DingTalk's: the send is accepted (errcode 0, task_id)
even when the user is over the daily quota (143105) or already got the same content
today (143106); such messages are not delivered and appear in getsendresult's
``forbidden_list``. Days are Asia/Shanghai days of ``self.clock``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from core.platforms.dingtalk import content_fingerprint
from tests.fakes.server import FakeServer, error, ok

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOKEN_TTL = 7200
DAILY_LIMIT = 500  # per user per enterprise-internal app per day
ERR_QUOTA = "143105"
ERR_DUPLICATE = "143106"


class FakeDingTalk(FakeServer):
    name = "fake-dingtalk"

    def __init__(
        self,
        app_key: str = "ding_test_key",
        app_secret: str = "ding_test_secret",
        agent_id: int = 10001,
    ) -> None:
        super().__init__()
        self.app_key = app_key
        self.app_secret = app_secret
        self.agent_id = agent_id
        self.daily_limit = DAILY_LIMIT
        self.token_delay = 0.0
        self.codes: dict[str, dict] = {}
        self.delivered: list[dict] = []
        self.forbidden: list[dict] = []
        self.tasks: dict[int, dict] = {}
        self._tokens: dict[str, dict] = {}
        self._current: str | None = None
        self._per_day: dict[tuple[str, str], int] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._ids = itertools.count(1)
        self.route("/gettoken", self._gettoken, ("GET",))
        self.route("/v1.0/oauth2/accessToken", self._access_token_v1, ("POST",))
        self.route("/topapi/v2/user/getuserinfo", self._getuserinfo, ("POST",))
        self.route("/topapi/message/corpconversation/asyncsend_v2", self._asyncsend, ("POST",))
        self.route("/topapi/message/corpconversation/getsendresult", self._sendresult, ("POST",))

    @property
    def rewrites(self) -> dict[str, str]:
        return {"https://oapi.dingtalk.com": self.base_url, "https://api.dingtalk.com": self.base_url}

    # -- test controls ----------------------------------------------------------------

    def add_code(self, code: str, userid: str, unionid: str | None = None, name: str = "") -> None:
        with self._lock:
            self.codes[code] = {"userid": userid, "unionid": unionid or "", "name": name}

    def expire_tokens(self) -> None:
        with self._lock:
            for info in self._tokens.values():
                info["expired"] = True
            self._current = None

    @property
    def token_fetches(self) -> int:
        return len(self.calls("/gettoken")) + len(self.calls("/v1.0/oauth2/accessToken"))

    def sent_today(self, userid: str) -> int:
        with self._lock:
            return self._per_day.get((self._day(), userid), 0)

    # -- tokens -----------------------------------------------------------------------

    def _issue(self) -> tuple[str, int]:
        """DingTalk returns the same token while it is valid."""
        if self.token_delay:
            time.sleep(self.token_delay)
        with self._lock:
            info = self._tokens.get(self._current) if self._current else None
            if info is None or self._dead(info):
                self._current = f"dt_{next(self._ids)}_{secrets.token_hex(8)}"
                info = {"expires_at": self.clock() + TOKEN_TTL, "expired": False}
                self._tokens[self._current] = info
            return self._current, int(info["expires_at"] - self.clock())

    def _gettoken(self, req: dict) -> dict:
        q = req["query"]
        if q.get("appkey") != self.app_key or q.get("appsecret") != self.app_secret:
            return error(40089, "不合法的corpid或corpsecret")
        token, expires_in = self._issue()
        return ok(access_token=token, expires_in=expires_in)

    def _access_token_v1(self, req: dict):
        body = req["json"] or {}
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return 400, {
                "requestid": secrets.token_hex(8),
                "code": "invalidClientIdOrSecret",
                "message": "无效的clientId或者clientSecret",
            }
        token, expires_in = self._issue()
        return {"accessToken": token, "expireIn": expires_in}

    def _dead(self, info: dict) -> bool:
        return info["expired"] or info["expires_at"] <= self.clock()

    def _token_error(self, req: dict) -> dict | None:
        token = req["query"].get("access_token")
        with self._lock:
            info = self._tokens.get(token or "")
            if info is None:
                return error(40014, "不合法的access_token")
            if self._dead(info):
                return error(42001, "access_token超时")
        return None

    # -- APIs -------------------------------------------------------------------------

    def _getuserinfo(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        code = (req["json"] or {}).get("code") or req["form"].get("code")
        with self._lock:
            user = self.codes.pop(code, None) if code else None
        if user is None:
            return error(40078, "不存在的临时授权码")
        result = {
            "userid": user["userid"],
            "unionid": user["unionid"],
            "associated_unionid": "",
            "name": user["name"],
            "device_id": secrets.token_hex(8),
            "sys": False,
            "sys_level": 0,
        }
        return ok(result=result, request_id=secrets.token_hex(6))

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock(), SHANGHAI).date().isoformat()

    def _asyncsend(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or dict(req["form"])
        msg = body.get("msg")
        if isinstance(msg, str):
            try:
                msg = json.loads(msg)
            except ValueError:
                msg = None
        if str(body.get("agent_id")) != str(self.agent_id):
            return error(40056, "不合法的agentid")
        if not isinstance(msg, dict) or msg.get("msgtype") not in msg or not _well_formed(msg):
            return error(40035, "不合法的参数")
        users = [u for u in str(body.get("userid_list") or "").split(",") if u]
        if not users:
            return error(1430000, "接受者为空")
        day, fingerprint = self._day(), content_fingerprint(msg)
        with self._lock:
            task_id = 256_000_000_000 + next(self._ids)
            task = {"userids": users, "msg": msg, "forbidden": [], "delivered": []}
            for userid in users:
                count = self._per_day.get((day, userid), 0)
                record = {"task_id": task_id, "userid": userid, "msg": msg, "day": day}
                if count >= self.daily_limit:
                    reason = {"code": ERR_QUOTA, "count": self.daily_limit, "userid": userid}
                elif (day, userid, fingerprint) in self._seen:
                    reason = {"code": ERR_DUPLICATE, "count": 1, "userid": userid}
                else:
                    reason = None
                if reason:
                    task["forbidden"].append(reason)
                    self.forbidden.append({**record, "code": reason["code"]})
                else:
                    self._seen.add((day, userid, fingerprint))
                    self._per_day[(day, userid)] = count + 1
                    task["delivered"].append(userid)
                    self.delivered.append(record)
            self.tasks[task_id] = task
        return ok(task_id=task_id, request_id=secrets.token_hex(6))

    def _sendresult(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or {}
        with self._lock:
            task = self.tasks.get(int(body.get("task_id") or 0))
        if task is None or str(body.get("agent_id")) != str(self.agent_id):
            return error(40035, "不合法的参数")
        send_result = {
            "invalid_user_id_list": [],
            "forbidden_user_id_list": [f["userid"] for f in task["forbidden"]],
            "failed_user_id_list": [],
            "read_user_id_list": [],
            "unread_user_id_list": list(task["delivered"]),
            "invalid_dept_id_list": [],
            "forbidden_list": list(task["forbidden"]),
        }
        return ok(send_result=send_result, request_id=secrets.token_hex(6))


def _well_formed(msg: dict) -> bool:
    """The fields the work-notification message types require (DingTalk's 消息类型与数据格式)."""
    body = msg[msg["msgtype"]]
    if not isinstance(body, dict):
        return False
    if msg["msgtype"] == "text":
        return bool(body.get("content"))
    if msg["msgtype"] == "markdown":
        return bool(body.get("title")) and bool(body.get("text"))
    if msg["msgtype"] == "action_card":
        if not body.get("title") or not body.get("markdown"):
            return False
        if body.get("single_title") or body.get("single_url"):
            return bool(body.get("single_title")) and bool(body.get("single_url"))
        buttons = body.get("btn_json_list")
        return (
            isinstance(buttons, list)
            and bool(buttons)
            and all(isinstance(b, dict) and b.get("title") and b.get("action_url") for b in buttons)
            and body.get("btn_orientation") in ("0", "1")
        )
    return True
