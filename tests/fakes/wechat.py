"""Fake api.weixin.qq.com: tokens, jscode2session, messages, media and menu.

Answers in WeChat's JSON shapes and error codes. Time comes from ``self.clock`` (epoch
seconds) so tests can move it.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import time

from tests.fakes.server import FakeServer, error, ok

CUSTOM_WINDOW = 48 * 3600
TOKEN_TTL = 7200
TEXT_BYTES = 2048  # customer-service text; beyond it WeChat answers 45002

ERR_TOKEN_INVALID = (40001, "invalid credential, access_token is invalid or not latest")
ERR_TOKEN_EXPIRED = (42001, "access_token expired")
ERR_TOKEN_MISSING = (41001, "access_token missing")


class FakeWeChat(FakeServer):
    name = "fake-wechat"

    def __init__(self, app_id: str = "wx_test_app", secret: str = "wx_test_secret") -> None:
        super().__init__()
        self.app_id = app_id
        self.secret = secret
        self.token_delay = 0.0
        self.codes: dict[str, tuple[str, str | None]] = {}
        self.used_codes: set[str] = set()
        self.users: set[str] = set()
        self.last_interaction: dict[str, float] = {}
        self.credits: dict[tuple[str, str], int] = {}
        self.media: dict[str, dict] = {}
        self.menu: dict | None = None
        self.sent: list[dict] = []
        self._tokens: dict[str, dict] = {}
        self._stable: str | None = None
        self._ids = itertools.count(1)
        self.route("/cgi-bin/stable_token", self._stable_token, ("POST",))
        self.route("/cgi-bin/token", self._plain_token, ("GET",))
        self.route("/sns/jscode2session", self._jscode2session, ("GET",))
        self.route("/cgi-bin/message/custom/send", self._custom_send, ("POST",))
        self.route("/cgi-bin/message/template/send", self._template_send, ("POST",))
        self.route("/cgi-bin/message/subscribe/send", self._subscribe_send, ("POST",))
        self.route("/cgi-bin/media/upload", self._media_upload, ("POST",))
        self.route("/cgi-bin/menu/create", self._menu_create, ("POST",))

    @property
    def rewrites(self) -> dict[str, str]:
        return {"https://api.weixin.qq.com": self.base_url}

    # -- test controls ----------------------------------------------------------------

    def add_code(self, code: str, openid: str, unionid: str | None = None) -> None:
        with self._lock:
            self.codes[code] = (openid, unionid)

    def add_user(self, openid: str) -> None:
        with self._lock:
            self.users.add(openid)

    def touch_user(self, openid: str, at: float | None = None) -> None:
        """The user messaged the account at `at` (default now): opens the 48 h window."""
        with self._lock:
            self.users.add(openid)
            self.last_interaction[openid] = self.clock() if at is None else at

    def grant_subscription(self, openid: str, template_id: str, n: int = 1) -> None:
        with self._lock:
            self.users.add(openid)
            key = (openid, template_id)
            self.credits[key] = self.credits.get(key, 0) + n

    def expire_tokens(self) -> None:
        """Every issued token now answers 42001; the next stable_token call mints anew."""
        with self._lock:
            for info in self._tokens.values():
                info["expired"] = True
            self._stable = None

    @property
    def token_fetches(self) -> int:
        return len(self.calls("/cgi-bin/stable_token")) + len(self.calls("/cgi-bin/token"))

    def messages(self, kind: str | None = None, touser: str | None = None) -> list[dict]:
        with self._lock:
            return [
                m
                for m in self.sent
                if (kind is None or m["kind"] == kind) and (touser is None or m["touser"] == touser)
            ]

    # -- tokens -----------------------------------------------------------------------

    def _mint(self) -> str:
        token = f"ACCESS_TOKEN_{next(self._ids)}_{secrets.token_urlsafe(12)}"
        self._tokens[token] = {"expires_at": self.clock() + TOKEN_TTL, "expired": False}
        return token

    def _bad_credentials(self, appid, secret) -> dict | None:
        if appid != self.app_id:
            return error(40013, "invalid appid")
        if secret != self.secret:
            return error(40125, "invalid appsecret")
        return None

    def _stable_token(self, req: dict) -> dict:
        self._sleep()
        body = req["json"] or {}
        if body.get("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        bad = self._bad_credentials(body.get("appid"), body.get("secret"))
        if bad:
            return bad
        with self._lock:
            current = self._tokens.get(self._stable) if self._stable else None
            if body.get("force_refresh") is True or not current or self._dead(current):
                if self._stable:
                    self._tokens[self._stable]["expired"] = True
                self._stable = self._mint()
            info = self._tokens[self._stable]
            return {
                "access_token": self._stable,
                "expires_in": int(info["expires_at"] - self.clock()),
            }

    def _plain_token(self, req: dict) -> dict:
        self._sleep()
        q = req["query"]
        if q.get("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        bad = self._bad_credentials(q.get("appid"), q.get("secret"))
        if bad:
            return bad
        with self._lock:
            return {"access_token": self._mint(), "expires_in": TOKEN_TTL}

    def _sleep(self) -> None:
        if self.token_delay:
            time.sleep(self.token_delay)

    def _dead(self, info: dict) -> bool:
        return info["expired"] or info["expires_at"] <= self.clock()

    def _token_error(self, req: dict) -> dict | None:
        token = req["query"].get("access_token")
        if not token:
            return error(*ERR_TOKEN_MISSING)
        with self._lock:
            info = self._tokens.get(token)
            if info is None:
                return error(*ERR_TOKEN_INVALID)
            if self._dead(info):
                return error(*ERR_TOKEN_EXPIRED)
        return None

    # -- APIs -------------------------------------------------------------------------

    def _jscode2session(self, req: dict) -> dict:
        q = req["query"]
        bad = self._bad_credentials(q.get("appid"), q.get("secret"))
        if bad:
            return bad
        if q.get("grant_type") != "authorization_code":
            return error(40002, "invalid grant_type")
        code = q.get("js_code", "")
        with self._lock:
            if code in self.used_codes:
                return error(40163, "code been used")
            if code not in self.codes:
                return error(40029, "invalid code")
            self.used_codes.add(code)
            openid, unionid = self.codes.pop(code)
            self.users.add(openid)
        result = {"openid": openid, "session_key": base64.b64encode(secrets.token_bytes(16)).decode()}
        if unionid:
            result["unionid"] = unionid
        return result

    def _record_sent(self, kind: str, body: dict, msgid: int | None = None) -> None:
        self.sent.append({"kind": kind, "touser": body.get("touser"), "body": body, "msgid": msgid})

    def _custom_send(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or {}
        openid = body.get("touser")
        msgtype = body.get("msgtype")
        with self._lock:
            if openid not in self.users:
                return error(40003, "invalid openid")
            if msgtype not in (
                "text",
                "image",
                "voice",
                "video",
                "music",
                "news",
                "mpnews",
                "msgmenu",
                "wxcard",
                "miniprogrampage",
                "mpnewsarticle",
            ):
                return error(40008, "invalid message type")
            if msgtype not in body:
                return error(47001, "data format error")
            if msgtype == "image" and body["image"].get("media_id") not in self.media:
                return error(40007, "invalid media_id")
            if msgtype == "text" and len(str(body["text"].get("content") or "").encode()) > TEXT_BYTES:
                return error(45002, "content size out of limit")
            if msgtype == "news":
                articles = body["news"].get("articles")
                if not isinstance(articles, list) or not articles:
                    return error(47001, "data format error")
                if len(articles) > 1:
                    return error(45008, "article size out of limit")
                if not all(isinstance(a, dict) and a.get("title") and a.get("url") for a in articles):
                    return error(47001, "data format error")
            last = self.last_interaction.get(openid)
            if last is None or self.clock() - last > CUSTOM_WINDOW:
                return error(45015, "response out of time limit or subscription is canceled")
            self._record_sent("custom", body)
        return ok()

    def _template_send(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or {}
        with self._lock:
            if body.get("touser") not in self.users:
                return error(40003, "invalid openid")
            if not body.get("template_id"):
                return error(40037, "invalid template_id")
            if not isinstance(body.get("data"), dict):
                return error(47003, "argument invalid! data.data invalid")
            msgid = 200_000_000 + next(self._ids)
            self._record_sent("template", body, msgid)
        return ok(msgid=msgid)

    def _subscribe_send(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or {}
        openid, template_id = body.get("touser"), body.get("template_id")
        with self._lock:
            if openid not in self.users:
                return error(40003, "invalid openid")
            if not template_id:
                return error(40037, "invalid template_id")
            if not isinstance(body.get("data"), dict):
                return error(47003, "argument invalid! data.data invalid")
            if self.credits.get((openid, template_id), 0) <= 0:
                return error(43101, "user refuse to accept the msg")
            self.credits[(openid, template_id)] -= 1
            msgid = 300_000_000 + next(self._ids)
            self._record_sent("subscribe", body, msgid)
        return ok(msgid=msgid)

    def _media_upload(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        media_type = req["query"].get("type")
        if media_type not in ("image", "voice", "video", "thumb"):
            return error(40004, "invalid media type")
        upload = req["files"].get("media")
        if not upload or not upload["data"]:
            return error(41005, "media data missing")
        with self._lock:
            media_id = f"MEDIA_{next(self._ids)}_{secrets.token_urlsafe(8)}"
            self.media[media_id] = {"type": media_type, **upload}
        return {"type": media_type, "media_id": media_id, "created_at": int(self.clock())}

    def _menu_create(self, req: dict) -> dict:
        bad = self._token_error(req)
        if bad:
            return bad
        body = req["json"] or {}
        bad = _menu_error(body.get("button"))
        if bad:
            return error(*bad)
        with self._lock:
            self.menu = body
        return ok()


# The documented menu/create limits and the global return codes for breaking them.
_MENU_KEYED = {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album",
               "pic_weixin", "location_select"}  # fmt: skip
_MENU_LINKED = {"view", "miniprogram"}
_MENU_OTHER = {"media_id", "view_limited", "article_id", "article_view_limited"}  # not checked here


def _bytes(value) -> int:
    return len(value.encode()) if isinstance(value, str) else -1


def _menu_error(buttons) -> tuple[int, str] | None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016, "invalid button size"
    for top in buttons:
        if not 1 <= _bytes(top.get("name")) <= 16:
            return 40018, "invalid button name size"
        subs = top.get("sub_button") or []
        if len(subs) > 5:
            return 40023, "invalid sub button size"
        checks = [(sub, 40024, 40026, 40027) for sub in subs] or [(top, 40017, 40019, 40020)]
        for button, type_code, key_code, url_code in checks:
            if button is not top and not 1 <= _bytes(button.get("name")) <= 60:
                return 40025, "invalid sub button name size"
            kind = button.get("type")
            if kind in _MENU_KEYED and not 1 <= _bytes(button.get("key")) <= 128:
                return key_code, "invalid button key size"
            if kind in _MENU_LINKED and not 1 <= _bytes(button.get("url")) <= 1024:
                return url_code, "invalid button url size"
            if kind not in _MENU_KEYED | _MENU_LINKED | _MENU_OTHER:
                return type_code, "invalid button type"
    return None
