"""Request and response models of the pass API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from core.validation import MAX_ID, Model, Out
from services.passes.rules import GATE_DETAILS, GATE_REASONS

#: Every gate reason code (a Literal, so the OpenAPI schema enumerates them).
GateReason = Literal[tuple(GATE_REASONS)]  # type: ignore[valid-type]


def _sane_year(value: Any) -> Any:
    if not 2000 <= value.year <= 2100:
        raise ValueError("日期超出允许范围（2000-2100年）")
    return value


#: A moment officers set (an end of validity, an event's start): aware, 2000-2100.
Moment = Annotated[AwareDatetime, AfterValidator(_sane_year)]


def _no_default(schema: dict) -> None:
    schema.pop("default", None)  # "absent" is not a value the type allows


def optional(**kwargs: Any) -> Any:
    """A field of a partial update (PATCH): left out, it stays as it is; null is refused
    (the type does not allow it), unless the type says ``| None``."""
    return Field(None, json_schema_extra=_no_default, **kwargs)


def _codes(table: dict[str, str]) -> str:
    return "；".join(f"{code}：{text}" for code, text in table.items())


class PersonIn(Model):
    name: str = Field(min_length=1, max_length=50, description="姓名")
    id_number: str = Field(min_length=1, max_length=32, description="居民身份证号码（18位）")
    mobile: str = Field(min_length=1, max_length=20, description="手机号")


class VisitIn(Model):
    purpose: str = Field(min_length=1, max_length=200, description="来访事由")
    host_unit: str = Field(min_length=1, max_length=100, description="接待单位")
    visit_from: date
    visit_to: date
    time_from: str = Field("00:00", description="每日起始时间 HH:MM")
    time_to: str = Field("24:00", description="每日结束时间 HH:MM")
    ring: int = Field(ge=1, le=9, description="申请通行的区域层级（1 为最外层）")


class ApplicationIn(VisitIn, PersonIn):
    kind: Literal["visitor", "vehicle"] = "visitor"
    plate: str | None = Field(None, max_length=16, description="车牌号（车辆）")
    plate_colour: Literal["blue", "yellow", "green", "white", "black"] | None = None
    vehicle_type: str | None = Field(None, max_length=32)
    driving_licence: str | None = Field(None, max_length=32, description="驾驶证号（车辆）")


class GroupIn(VisitIn):
    name: str = Field(min_length=1, max_length=100, description="团组名称")
    members: list[PersonIn] = Field(min_length=1, max_length=30)


class RuleResultOut(Out):
    seq: int
    rule: str
    outcome: str
    reason_code: str
    message: str


class PassOut(Out):
    id: int
    ring: int
    status: str
    token: str | None = Field(None, description="二维码内容（有效时）")
    valid_from: datetime
    valid_to: datetime
    card_png: str | None = None
    card_pdf: str | None = None


class ApplicationOut(Out):
    id: int
    event_id: int
    group_id: int | None
    kind: str
    status: str
    ring: int
    name: str = Field(description="脱敏姓名")
    id_number: str = Field(description="脱敏身份证号")
    mobile: str = Field(description="脱敏手机号")
    plate: str | None
    visit_from: date
    visit_to: date
    result_message: str = Field(description="审核结果说明（申请人可见）")
    rules: list[RuleResultOut] | None = Field(description="每条核验规则的结果（仅民警可见；申请人为空）")
    passes: list[PassOut]
    created_at: datetime


class ScanIn(Model):
    qr: str = Field(min_length=1, max_length=512)
    nonce: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
    scanned_at: AwareDatetime
    direction: Literal["in", "out"]
    holder_hash: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{16}$", description="身份证阅读器计算的持证人标签"
    )
    plate: str | None = Field(
        None, max_length=16, description="车牌识别结果或人工录入的车牌号（车辆通道必填）"
    )


class ScanOut(Out):
    result: Literal["ok", "error"]
    reason: GateReason | None = Field(description="拒绝原因代码（通过时为空）：" + _codes(GATE_REASONS))
    message: str = Field(description="给值守人员看的中文说明")
    detail: str | None = Field(description="更具体的中文说明：" + "；".join(GATE_DETAILS.values()))
    pass_id: int | None
    holder: str | None
    require_attention: bool
    replayed: bool


class OfflineScanIn(Model):
    nonce: str = Field(min_length=8, max_length=64)
    qr: str = Field(min_length=1, max_length=512)
    direction: Literal["in", "out"]
    scanned_at: AwareDatetime
    result: Literal["ok", "error"]
    reason: str | None = Field(None, max_length=32, description="离线闸机给出的拒绝原因代码（同在线核验）")


class OfflineUploadIn(Model):
    scans: list[OfflineScanIn] = Field(min_length=1, max_length=5000)


class SinceQuery(Model):
    since: int | None = Field(None, ge=0, le=MAX_ID, description="上次同步的吊销列表版本号")
