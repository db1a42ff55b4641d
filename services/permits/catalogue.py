"""The chemical catalogue, imported from a dated CSV (category,name_zh,name_en,cas,note)."""

from __future__ import annotations

import csv
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import ValidationFailed
from models.permits.catalogue import Chemical

_CAS = re.compile(r"\d{2,7}-\d{2}-\d")


def cas_valid(cas: str) -> bool:
    """CAS registry number shape and check digit."""
    if not _CAS.fullmatch(cas):
        return False
    digits = cas.replace("-", "")
    body, check = digits[:-1], int(digits[-1])
    return sum(int(d) * (i + 1) for i, d in enumerate(reversed(body))) % 10 == check


def import_rows(session: Session, rows: list[dict[str, str]], as_of: date) -> dict[str, int]:
    """Upsert catalogue rows by CAS; rows absent from the file are deactivated.

    Idempotent: importing the same file again changes nothing but ``updated_at``.
    Raises ValidationFailed (nothing written) naming the first bad line.
    """
    parsed = []
    for line_no, row in enumerate(rows, start=2):
        cas = (row.get("cas") or "").strip()
        category = (row.get("category") or "").strip()
        if not cas_valid(cas) or category not in ("1", "2", "3") or not (row.get("name_zh") or "").strip():
            raise ValidationFailed(
                f"目录第 {line_no} 行无效（类别、名称或 CAS 号）",
                code="invalid_catalogue_row",
                fields={"file": f"第 {line_no} 行"},
            )
        parsed.append((cas, int(category), row))
    existing = {c.cas: c for c in session.scalars(select(Chemical))}
    added = updated = 0
    for cas, category, row in parsed:
        chem = existing.pop(cas, None)
        if chem is None:
            chem = Chemical(cas=cas)
            session.add(chem)
            added += 1
        else:
            updated += 1
        chem.name_zh, chem.name_en = row["name_zh"].strip(), (row.get("name_en") or "").strip()
        chem.category, chem.note = category, (row.get("note") or "").strip()
        chem.catalogue_date, chem.active, chem.updated_at = as_of, True, utcnow()
        chem.unit = chem.unit or "kg"
    for chem in existing.values():
        chem.active = False
    session.flush()
    return {"added": added, "updated": updated, "deactivated": len(existing)}


def import_file(session: Session, path: str | Path, as_of: date) -> dict[str, int]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return import_rows(session, list(csv.DictReader(fh)), as_of)


def chemical(session: Session, chemical_id: int) -> Chemical:
    chem = session.get(Chemical, chemical_id)
    if chem is None or not chem.active:
        raise ValidationFailed(
            "化学品不在易制毒化学品目录中",
            code="unknown_chemical",
            fields={"chemical_id": "目录中无此化学品"},
        )
    return chem


def list_active(session: Session) -> list[Chemical]:
    return list(
        session.scalars(select(Chemical).where(Chemical.active).order_by(Chemical.category, Chemical.id))
    )


def check_quantity(chem: Chemical, quantity: object, unit: str) -> None:
    """Positive quantity in the chemical's catalogue unit, or ValidationFailed."""
    try:
        ok = Decimal(str(quantity)) > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise ValidationFailed("数量必须大于0", code="invalid_quantity", fields={"quantity": "数量必须大于0"})
    if unit != chem.unit:
        msg = f"计量单位应为 {chem.unit}"
        raise ValidationFailed(msg, code="unit_mismatch", fields={"unit": msg})


def qty(value: object) -> str:
    """Quantities in signal inputs and messages: always three decimals."""
    return f"{Decimal(str(value)):.3f}"
