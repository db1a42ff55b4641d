"""People and their personal data (encrypted, blind-indexed, masked on output)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import pii
from core.validators import normalize_mobile, normalize_resident_id
from models.identity import Person


def set_personal_data(person: Person, id_number: str | None, mobile: str | None) -> None:
    """Validate, encrypt and index; plaintext never reaches a column or a log."""
    if id_number is not None:
        value = normalize_resident_id(id_number)
        person.id_number = value
        person.id_number_index = pii.index("resident_id", value)
    if mobile is not None:
        value = normalize_mobile(mobile)
        person.mobile = value
        person.mobile_index = pii.index("mobile", value)


def find_by_id_number(session: Session, id_number: str) -> Person | None:
    value = normalize_resident_id(id_number)
    return session.scalar(select(Person).where(Person.id_number_index == pii.index("resident_id", value)))
