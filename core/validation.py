"""Pydantic errors → our ``validation_error`` with Chinese per-field messages."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ValidationFailed

_MESSAGES: dict[str, str] = {
    "missing": "必填项",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "datetime_type": "应为时间（ISO 8601，带时区）",
    "datetime_parsing": "应为时间（ISO 8601，带时区）",
    "datetime_from_date_parsing": "应为时间（ISO 8601，带时区）",
    "timezone_aware": "时间必须带时区",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "string_pattern_mismatch": "格式不正确",
    "json_invalid": "不是合法的 JSON",
    "union_tag_invalid": "类型不正确",
    "union_tag_not_found": "缺少类型字段",
    "uuid_parsing": "格式不正确",
    "url_parsing": "不是合法的网址",
    "finite_number": "应为有限数字",
}


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length", "")
        return "不能为空" if n in (0, 1) else f"长度至少为 {n}"
    if kind in ("string_too_long", "too_long"):
        return f"长度不能超过 {ctx.get('max_length', '')}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ops = {
            "greater_than": "大于",
            "greater_than_equal": "不小于",
            "less_than": "小于",
            "less_than_equal": "不大于",
        }
        limit = next(iter(ctx.values()), "")
        return f"应{ops[kind]} {limit}"
    if kind == "value_error":
        # Our validators raise ValueError with the Chinese message already.
        err_obj = ctx.get("error")
        return str(err_obj) if err_obj is not None else err.get("msg", "格式不正确")
    if kind == "assertion_error":
        return str(ctx.get("error", "")) or "格式不正确"
    return _MESSAGES.get(kind, "格式不正确")


def pydantic_fields(exc: ValidationError, location: str = "body") -> ValidationFailed:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or location
        fields.setdefault(loc, _message(err))
    return ValidationFailed(fields=fields)


#: Largest value of an integer primary key (PostgreSQL INTEGER).
MAX_ID = 2_147_483_647

#: A row id in a request body or query: positive and within the column's range.
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Model(BaseModel):
    """Base for request models: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    """Base for response models."""

    model_config = ConfigDict(from_attributes=True)
