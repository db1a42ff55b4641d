"""Notification kinds used by the jobs tests (import to register; RQ workers get it via
JOB_MODULES=tests.jobs.kinds)."""

from __future__ import annotations

from jobs.push.kinds import PushKind, register_kind
from models.jobs import Channel

REMINDER = register_kind(
    PushKind(
        kind="test.reminder",
        title="证件到期提醒",
        text="{name}，您的{doc}将于{days}天后到期",
        oa_template_id="TPL_OA_EXPIRY",
        oa_fields={"thing1": "doc", "number2": "days"},
        mp_template_id="TPL_MP_EXPIRY",
        mp_fields={"thing1": "doc", "number2": "days"},
        page="pages/permits/index",
    )
)

CUSTOM_WITH_FALLBACK = register_kind(
    PushKind(
        kind="test.custom_fallback",
        title="审批结果",
        text="{name}，您的申请已{result}",
        oa_template_id="TPL_OA_RESULT",
        oa_fields={"thing1": "result"},
        channels=(Channel.wechat_custom,),
    )
)

CUSTOM_ONLY = register_kind(
    PushKind(kind="test.custom_only", title="消息", text="{name}：{body}", channels=(Channel.wechat_custom,))
)

DATA = {"name": "张三", "doc": "危化品运输许可", "days": 7}
