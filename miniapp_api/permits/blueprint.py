"""The permits blueprint object and the bounded input types its routes share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

from core.api import ApiBlueprint
from core.errors import NotFound

MAX_ID = 2**31 - 1

bp = ApiBlueprint("permits", __name__, tag="permits", url_prefix="/permits")


def _sane_year(value: Any) -> Any:
    if not 2000 <= value.year <= 2100:
        raise ValueError("日期超出允许范围（2000-2100年）")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Qty = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=14, decimal_places=3, description="数量")]
Day = Annotated[date, AfterValidator(_sane_year)]
Moment = Annotated[AwareDatetime, AfterValidator(_sane_year)]


@bp.record_once
def _install_hot_path(state) -> None:
    from services.permits import hotsync

    hotsync.install(state.app)


def settled(ctx) -> None:
    """Before a read that must be exact: pending write-behind filings land first."""
    from services.permits import ledger_drain

    ledger_drain.before_read(ctx.app)


@bp.url_value_preprocessor
def _bounded_ids(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Ids beyond the column range can match nothing: answer 404 before touching the database.
    for value in (values or {}).values():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound()
