"""Citizen dialogs for visitor and vehicle passes (services.passes): 我的通行证, and the
pass side of 查验 (validity only, no personal data). The pass card image (with its QR)
is sent by a job: rendered (or read from the file store), uploaded, sent as an image."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.dialogs.common import SCENES, VERIFIERS
from bot.engine import Reply, Turn
from bot.jobs import enqueue_image, image_renderer
from bot.router import command
from jobs.registry import PermanentError

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASS_NO = re.compile(r"^P(\d{1,6})-(\d{1,12})$")
MAX_IMAGES = 3  # customer-service messages are limited; send the newest few cards
STATUS = {"approved": "已通过", "rejected": "未通过", "manual_review": "人工审核中", "cancelled": "已取消"}
KIND = {"visitor": "人员", "vehicle": "车辆"}


def pass_number(credential: Any) -> str:
    return f"P{credential.event_id:03d}-{credential.id:08d}"


def _local(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


@command("我的通行证", summary="我的通行证申请、状态和二维码", roles=("citizen",), menu_key="MY_PASSES",
         aliases=("通行证",))  # fmt: skip
def my_passes(turn: Turn, _args: str) -> Reply:
    from models.passes import Event
    from services.passes import applications, issuance

    actor = turn.actor()
    apps = applications.list_own(turn.session, actor, after_id=None, limit=10)
    if not apps:
        return Reply(text="您还没有通行证申请。请在小程序“通行证”中提交申请。")
    lines, images = ["我的通行证"], 0
    for app in apps:
        event = turn.session.get(Event, app.event_id)
        status = STATUS.get(str(app.status.value), str(app.status.value))
        kind = KIND.get(str(app.kind.value), "")
        lines.append(f"· {event.name if event else ''} {kind}通行 {app.visit_from}～{app.visit_to}：{status}")
        cred = issuance.active_pass(turn.session, app.id) if app.status.value == "approved" else None
        if cred is not None:
            lines.append(
                f"  编号 {pass_number(cred)}，有效期 {_local(cred.valid_from)} 至 {_local(cred.valid_to)}"
            )
            if turn.msg.channel == "wechat" and images < MAX_IMAGES:
                key = f"pass-qr:{cred.id}:{turn.msg.user_key}:{turn.msg.dedup}"
                enqueue_image(turn.session, turn.msg, "pass", key, pass_id=cred.id)
                images += 1
    if images:
        lines.append("通行证二维码图片稍后发送给您，入场时出示即可。")
    elif turn.msg.channel != "wechat":
        lines.append("通行证二维码请在小程序中查看。")
    return Reply(text="\n".join(lines))


@image_renderer("pass")
def render_pass(session: Session, payload: dict[str, Any]) -> tuple[bytes, str]:
    """The pass card PNG: the stored render when there is one, else rendered now."""
    from jobs.context import get_app
    from models.passes import PassCredential, PassStatus

    cred = session.get(PassCredential, payload["pass_id"])
    if cred is None or cred.status != PassStatus.active:
        raise PermanentError("pass not found or no longer active")
    settings = get_app().extensions["zhizhi"].settings
    if cred.card_png_key:
        from core.files import LocalFileStore

        store = LocalFileStore(settings.file_store_dir)
        if store.exists(cred.card_png_key):
            return store.open(cred.card_png_key), "pass.png"
    from jobs.passes import card_data
    from jobs.render.pass_card import render_pass_card_png

    return render_pass_card_png(card_data(session, cred)), "pass.png"


def verify_pass(session: Session, number: str, now: Any) -> str | None:
    """Validity of a pass number; no holder data. None when it is not a pass number."""
    from models.passes import Event, PassCredential, PassStatus

    m = PASS_NO.match(number)
    if not m:
        return None
    cred = session.get(PassCredential, int(m.group(2)))
    if cred is None or cred.event_id != int(m.group(1)):
        return f"未找到通行证 {number}。"
    event = session.get(Event, cred.event_id)
    if cred.status != PassStatus.active:
        state = "已作废"
    elif now < cred.valid_from:
        state = "尚未生效"
    elif now > cred.valid_to:
        state = "已过期"
    else:
        state = "有效"
    period = f"{_local(cred.valid_from)} 至 {_local(cred.valid_to)}"
    return f"通行证 {number}：{state}\n活动：{event.name if event else ''}\n有效期：{period}"


def event_scene(turn: Turn, rest: str) -> Reply:
    """A poster QR with scene ``event_<id>``: what the event is and how to apply."""
    from models.passes import Event

    event = turn.session.get(Event, int(rest)) if rest.isdigit() else None
    if event is None:
        return Reply(text="欢迎关注智治服务号！发送“帮助”查看可用功能。")
    return Reply(
        text=f"欢迎！{event.name} 通行证请在小程序“通行证”中申请，审核通过后发送“我的通行证”即可收到二维码。"
    )


VERIFIERS.append(verify_pass)
SCENES["event_"] = event_scene
