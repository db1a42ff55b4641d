"""Personal-data audit: after the demo data is loaded, no table and no log line written
during the suite holds a plaintext resident ID or mobile number."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import inspect, select, text

import models
from core.validators import InvalidValue, normalize_resident_id
from services.demo import seed_all

ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


def _known_plaintexts(db) -> set[str]:
    """Every decrypted value of every encrypted column (what must never appear raw)."""
    from core.pii import EncryptedString

    values: set[str] = set()
    for mapper in models.Base.registry.mappers:
        cols = [c for c in mapper.columns if isinstance(c.type, EncryptedString)]
        if not cols:
            continue
        for obj in db.scalars(select(mapper.class_)):
            values.update(v for c in cols if (v := getattr(obj, c.key)) and len(v) >= 11)
    return values


def _valid_ids(text_: str) -> list[str]:
    found = []
    for m in ID_RE.findall(text_):
        try:
            found.append(normalize_resident_id(m))
        except InvalidValue:
            continue
    return found


@pytest.mark.run_last
def test_no_plaintext_personal_data_in_tables_or_logs(app, db, suite_log) -> None:
    seed_all(db, app.extensions["zhizhi"].settings)
    db.flush()
    known = _known_plaintexts(db)
    assert len(known) >= 40, "the demo data should hold encrypted ID and phone numbers"

    for table in inspect(db.connection()).get_table_names():
        for row in db.execute(text(f'SELECT * FROM "{table}"')):
            dump = " ".join(str(v) for v in row)
            leaked = [v for v in known if v in dump]
            assert not leaked, f"plaintext personal data in table {table}"

    log_text = suite_log.read_text(encoding="utf-8")
    assert log_text, "the suite wrote no log lines at all"
    assert not [v for v in known if v in log_text], "plaintext personal data in the log"
    assert not _valid_ids(log_text), "a valid resident ID number in the log"
    assert not MOBILE_RE.findall(log_text), "a mobile number in the log"
