"""Validation and normalisation of Chinese identifiers.

Covers resident ID numbers (GB 11643, ISO 7064 MOD 11-2), unified social credit
codes (GB 32100-2015), mainland mobile numbers and motor-vehicle plates (GA 36)
together with the plate colour. Every failure raises :class:`InvalidValue` with a
stable snake_case ``code`` and a Chinese ``message``.

The ``Annotated`` aliases (:data:`ResidentId`, :data:`Mobile`, :data:`USCC`) plug
into pydantic v2 models. :class:`InvalidValue` is a ``ValueError``, so pydantic
reports it as ``value_error`` with the exception in ``ctx["error"]``: its ``str()``
is the Chinese message and ``.code`` the stable code. For plate + colour, call
:func:`normalize_plate` from a ``model_validator(mode="after")``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator

__all__ = [
    "PLATE_COLOURS",
    "USCC",
    "InvalidValue",
    "Mobile",
    "PlateColour",
    "ResidentId",
    "age_on",
    "normalize_mobile",
    "normalize_plate",
    "normalize_resident_id",
    "normalize_uscc",
    "resident_id_birth_date",
    "resident_id_check_digit",
    "resident_id_gender",
    "uscc_check_char",
]

_SHANGHAI = "Asia/Shanghai"


class InvalidValue(ValueError):
    """A value failed validation; ``code`` is stable, ``message`` is Chinese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


def _today() -> date:
    return datetime.now(ZoneInfo(_SHANGHAI)).date()


# --- resident ID (GB 11643) -------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_MAP = "10X98765432"
_ID_SHAPE = re.compile(r"\d{17}[\dX]")
_PROVINCES = frozenset((*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47)))
_PROVINCES |= frozenset((*range(50, 55), *range(61, 66), 71, 81, 82, 83))


def resident_id_check_digit(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidValue("invalid_resident_id", "身份证号码格式错误，应为18位")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_MAP[total % 11]


def _birth_date_or_none(value: str) -> date | None:
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def normalize_resident_id(s: str, *, today: date | None = None) -> str:
    """Normalise (strip spaces, upper-case X) and validate an 18-digit ID number."""
    value = "".join(str(s).split()).upper()
    if len(value) != 18 or not value.isascii() or not _ID_SHAPE.fullmatch(value):
        raise InvalidValue("invalid_resident_id", "身份证号码格式错误，应为18位")
    if int(value[:2]) not in _PROVINCES:
        raise InvalidValue("invalid_resident_id", "身份证号码地区代码错误")
    born = _birth_date_or_none(value)
    if born is None:
        raise InvalidValue("invalid_resident_id", "身份证号码出生日期无效")
    if born.year < 1900 or born > (today or _today()):
        raise InvalidValue("invalid_resident_id", "身份证号码出生日期超出合理范围")
    if resident_id_check_digit(value[:17]) != value[17]:
        raise InvalidValue("invalid_resident_id", "身份证号码校验位错误")
    return value


def resident_id_birth_date(resident_id: str) -> date:
    """Birth date embedded in a (valid) ID number."""
    value = normalize_resident_id(resident_id)
    born = _birth_date_or_none(value)
    assert born is not None  # guaranteed by normalize_resident_id
    return born


def resident_id_gender(resident_id: str) -> Literal["male", "female"]:
    """Gender from the sequence code: odd 17th digit is male."""
    value = normalize_resident_id(resident_id)
    return "male" if int(value[16]) % 2 else "female"


def age_on(resident_id: str, on: date) -> int:
    """Completed years of age on ``on`` (a Feb 29 birthday ages on Mar 1)."""
    born = resident_id_birth_date(resident_id)
    before_birthday = (on.month, on.day) < (born.month, born.day)
    return on.year - born.year - int(before_birthday)


# --- unified social credit code (GB 32100-2015) ------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Registration authority (1st char) -> allowed organisation types (2nd char).
_USCC_TYPES = {
    "1": "1239",  # 机构编制
    "2": "19",  # 外交
    "3": "1234559",  # 司法行政
    "4": "19",  # 文化
    "5": "1239",  # 民政
    "6": "129",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 市场监管（工商）
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业
    "Y": "1",  # 其他
}


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    try:
        total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except (KeyError, ValueError):
        raise InvalidValue("invalid_uscc", "统一社会信用代码含有非法字符") from None
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def normalize_uscc(s: str) -> str:
    """Normalise (strip spaces, upper-case) and validate a credit code."""
    value = "".join(str(s).split()).upper()
    if len(value) != 18:
        raise InvalidValue("invalid_uscc", "统一社会信用代码应为18位")
    if any(c not in _USCC_VALUES for c in value):
        raise InvalidValue("invalid_uscc", "统一社会信用代码含有非法字符")
    if value[1] not in _USCC_TYPES.get(value[0], ""):
        raise InvalidValue("invalid_uscc", "统一社会信用代码登记管理部门或机构类别代码错误")
    if not value[2:8].isdigit():
        raise InvalidValue("invalid_uscc", "统一社会信用代码行政区划码错误")
    if uscc_check_char(value[:17]) != value[17]:
        raise InvalidValue("invalid_uscc", "统一社会信用代码校验位错误")
    return value


# --- mainland mobile ---------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_mobile(s: str) -> str:
    """Strip spaces/dashes and a +86/0086 prefix; require 11 digits 1[3-9]..."""
    value = re.sub(r"[\s\-]", "", str(s))
    for prefix in ("+86", "0086"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    if not value.isascii() or not _MOBILE.fullmatch(value):
        raise InvalidValue("invalid_mobile", "手机号码格式错误，应为11位中国大陆手机号")
    return value


# --- plates (GA 36) ------------------------------------------------------------

PLATE_COLOURS = ("blue", "yellow", "green", "white", "black")
PlateColour = Literal["blue", "yellow", "green", "white", "black"]

_PROVINCE_ABBR = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_LETTER = "[A-HJ-NP-Z]"
_SERIAL = "[A-HJ-NP-Z0-9]"
_PLATE_HEAD = f"[{_PROVINCE_ABBR}]{_LETTER}"
_ORDINARY = re.compile(f"{_PLATE_HEAD}{_SERIAL}{{4}}(?P<last>{_SERIAL}|[挂学警港澳])")
# Small new-energy: D/F then five serial characters (浙AD12345; GA 36-2018 puts
# digits in the last four, but we accept letters there rather than refuse a
# real car over a reading of the standard). Large: five digits then D/F.
_NEW_ENERGY = re.compile(f"{_PLATE_HEAD}(?:[DF]{_SERIAL}{{5}}|\\d{{5}}[DF])")
_SUFFIX_COLOURS = {
    "警": ("white",),
    "学": ("yellow",),
    "挂": ("yellow",),
    "港": ("black",),
    "澳": ("black",),
}
_ORDINARY_COLOURS = ("blue", "yellow", "black")
_PLATE_STRIP = re.compile(r"[\s·•・\u2027\u30fb]")
_COLOUR_NAMES = {
    "blue": "蓝",
    "yellow": "黄",
    "green": "绿",
    "white": "白",
    "black": "黑",
}


def _plate_colours(value: str) -> tuple[str, ...]:
    """Colours a well-formed plate may have; raise if the format is wrong."""
    if len(value) == 8 and _NEW_ENERGY.fullmatch(value):
        return ("green",)
    match = _ORDINARY.fullmatch(value) if len(value) == 7 else None
    if match is None:
        raise InvalidValue("invalid_plate", "车牌号码格式错误")
    return _SUFFIX_COLOURS.get(match["last"], _ORDINARY_COLOURS)


def normalize_plate(plate: str, colour: str) -> str:
    """Normalise a plate (upper-case; no spaces or middle dot) and check its colour."""
    value = _PLATE_STRIP.sub("", str(plate)).upper()
    allowed = _plate_colours(value)
    if colour not in PLATE_COLOURS:
        raise InvalidValue("invalid_plate_colour", "车牌颜色无效，应为蓝、黄、绿、白、黑之一")
    if colour not in allowed:
        expected = "或".join(_COLOUR_NAMES[c] for c in allowed)
        raise InvalidValue(
            "invalid_plate_colour",
            f"车牌颜色与号码不符：该号牌应为{expected}色",
        )
    return value


# --- pydantic v2 types ---------------------------------------------------------


ResidentId = Annotated[str, AfterValidator(normalize_resident_id)]
Mobile = Annotated[str, AfterValidator(normalize_mobile)]
USCC = Annotated[str, AfterValidator(normalize_uscc)]
