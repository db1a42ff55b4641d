"""Personal data is encrypted at rest, indexed blindly and masked on output."""

from __future__ import annotations

from sqlalchemy import text

from services.people import find_by_id_number, set_personal_data
from tests.helpers import Api, make_person, token_for, valid_id_number


def test_raw_rows_hold_no_plaintext_and_lookup_works(db) -> None:
    id_number, mobile = valid_id_number(7), "13812345678"
    person = make_person(db, "citizen")
    set_personal_data(person, id_number, mobile)
    db.flush()
    raw = db.execute(text("SELECT * FROM persons WHERE id = :id"), {"id": person.id}).one()
    dump = repr(tuple(raw))
    assert id_number not in dump and mobile not in dump
    assert id_number[-6:] not in dump
    assert find_by_id_number(db, id_number.lower()).id == person.id


def test_api_output_masks_the_phone_number(client, db) -> None:
    person = make_person(db, "citizen", mobile="13812345678")
    me = Api(client, token_for(db, person)).get("/auth/me").json["data"]
    assert me["mobile"] == "138****5678"
