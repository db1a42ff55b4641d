"""What a reply may hold on each platform, and replies sent outside the passive answer.

Length caps. WeChat refuses a customer-service text over its limit (errcode 45002,
"content size out of limit") and clients cut long passive texts; the limit commonly
given for both is 2,048 bytes of UTF-8. DingTalk documents no hard limit for robot or
work-notification text ("建议500字符以内" for work notifications) but refuses very long
ones (``invalidParameter.msgParam.tooLong``); we keep to 2,048 characters there. A text
over the cap is cut at a line break where one is near, and says so.

Late replies (too slow for the passive answer, slow commands run in a job, a DingTalk
Stream answer its session webhook refused) keep their form: a reply with a link goes
out as a one-article customer-service ``news`` message on WeChat (WeChat allows one
article per customer-service news message; more is errcode 45008) and as an
``action_card`` work notification on DingTalk; a markdown reply as a ``markdown`` one.
DingTalk silently drops a work notification whose content equals one the same user got
earlier that day, so a late DingTalk answer names the message it answers (its time and
text): asking the same question twice in a day still gets two answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.engine import Reply

WECHAT_TEXT_BYTES = 2048
DINGTALK_TEXT_CHARS = 2048
CUT_NOTE = "\n……（内容较长，已截断）"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def fit_bytes(text: str, limit: int = WECHAT_TEXT_BYTES) -> str:
    """``text`` within ``limit`` bytes of UTF-8."""
    if len(text) * 4 <= limit or len(text.encode()) <= limit:  # the common case: no encoding
        return text
    room = limit - len(CUT_NOTE.encode())
    head = text.encode()[:room].decode(errors="ignore")
    return _at_line(head) + CUT_NOTE


def fit_chars(text: str, limit: int = DINGTALK_TEXT_CHARS) -> str:
    """``text`` within ``limit`` characters."""
    if len(text) <= limit:
        return text
    return _at_line(text[: limit - len(CUT_NOTE)]) + CUT_NOTE


def _at_line(head: str) -> str:
    """Cut at the last line break when it keeps most of ``head``."""
    cut = head.rfind("\n")
    return head[:cut] if cut >= len(head) * 0.7 else head


# --- late replies ----------------------------------------------------------------------


def wechat_custom(reply: Reply) -> dict[str, Any]:
    """The customer-service message body (without ``touser``) for ``reply``."""
    if reply.url:
        article = {
            "title": fit_bytes(reply.title or "详情", 256),
            "description": fit_bytes(reply.text),
            "url": reply.url,
        }
        return {"msgtype": "news", "news": {"articles": [article]}}
    return {"msgtype": "text", "text": {"content": fit_bytes(reply.text)}}


def dingtalk_notification(reply: Reply, asked: str = "", asked_at: int = 0) -> dict[str, Any]:
    """The work-notification ``msg`` for ``reply``, naming the message it answers."""
    when = datetime.fromtimestamp(asked_at, UTC) if asked_at > 0 else datetime.now(UTC)
    quoted = asked.strip().replace("\n", " ")
    if len(quoted) > 20:
        quoted = quoted[:20] + "…"
    stamp = when.astimezone(SHANGHAI).strftime("%m-%d %H:%M:%S")
    footer = f"（回复您 {stamp} 发送的“{quoted}”）" if quoted else f"（回复您 {stamp} 的消息）"
    text = fit_chars(reply.text, DINGTALK_TEXT_CHARS - len(footer) - 2) + "\n\n" + footer
    title = reply.title or "智治"
    if reply.buttons or reply.url:
        card: dict[str, Any] = {"title": title, "markdown": text}
        if reply.buttons:
            card["btn_orientation"] = "0"
            card["btn_json_list"] = [{"title": t, "action_url": u} for t, u in reply.buttons]
        else:
            card.update(single_title="查看详情", single_url=reply.url)
        return {"msgtype": "action_card", "action_card": card}
    if reply.markdown:
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    return {"msgtype": "text", "text": {"content": text}}
