"""Document rendering for certificates: pass cards (PDF + PNG) and permit certificates.

Renderers are pure functions from a data class to bytes, with deterministic output:
the same data gives byte-identical files, so storing them in the content-addressed
file store (``core.files``) makes a re-render a no-op. Everything printed is Chinese.

Modules: ``qr`` (QR encode / draw), ``fonts`` (CJK fonts, line wrapping),
``pass_card`` and ``permit_cert`` (the documents).
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

PRINT_TZ = "Asia/Shanghai"


@lru_cache(maxsize=1)
def print_tz() -> tzinfo:
    """The zone every printed time is shown in."""
    return ZoneInfo(PRINT_TZ)


def local(dt: datetime) -> datetime:
    """``dt`` (timezone-aware) in Asia/Shanghai; naive datetimes are refused."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be printed unambiguously: {dt!r}")
    return dt.astimezone(print_tz())


def fmt_datetime(dt: datetime) -> str:
    """``2025-09-01 08:00`` in Asia/Shanghai."""
    return local(dt).strftime("%Y-%m-%d %H:%M")


def fmt_date_cn(d: date) -> str:
    """``2025年9月1日``; a datetime is first converted to Asia/Shanghai."""
    if isinstance(d, datetime):
        d = local(d).date()
    return f"{d.year}年{d.month}月{d.day}日"
