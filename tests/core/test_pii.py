import io
import logging
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from core import pii
from core.pii import (
    DecryptError,
    EncryptedString,
    FieldCipher,
    PIIScrubbingFilter,
    blind_index,
    mask_mobile,
    mask_name,
    mask_plate,
    mask_resident_id,
    scrub,
)

KEY1 = bytes(range(32))
KEY2 = bytes(range(32, 64))
INDEX_KEY = b"i" * 32
RID = "330106199001011234"


@pytest.fixture
def unconfigured(monkeypatch):
    # monkeypatch puts back whatever an app fixture may have configured
    monkeypatch.setattr(pii, "_config", None)


@pytest.fixture
def configured(unconfigured):
    pii.configure({1: KEY1, 2: KEY2}, current=2, index_key=INDEX_KEY)


# --- cipher ------------------------------------------------------------------------


def test_roundtrip_with_layout_version_nonce_ciphertext_tag():
    cipher = FieldCipher({7: KEY1}, current=7)
    blob = cipher.encrypt(RID, aad=b"persons.id_number")
    assert blob[0] == 7
    assert len(blob) == 1 + 12 + len(RID) + 16
    assert RID.encode() not in blob
    assert cipher.decrypt(blob, aad=b"persons.id_number") == RID


def test_same_plaintext_encrypts_differently_each_time():
    cipher = FieldCipher({1: KEY1}, current=1)
    assert cipher.encrypt("张三") != cipher.encrypt("张三")


def test_any_flipped_byte_is_detected():
    cipher = FieldCipher({1: KEY1}, current=1)
    blob = cipher.encrypt("13812345678")
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptError):
            cipher.decrypt(bytes(tampered))


def test_wrong_aad_truncation_and_unknown_version_are_refused():
    cipher = FieldCipher({1: KEY1}, current=1)
    blob = cipher.encrypt("x", aad=b"a")
    with pytest.raises(DecryptError):
        cipher.decrypt(blob, aad=b"b")
    with pytest.raises(DecryptError):
        cipher.decrypt(blob[:20])
    with pytest.raises(DecryptError):
        cipher.decrypt(b"\x09" + blob[1:])


def test_rotation_old_versions_still_decrypt_new_writes_use_current():
    old = FieldCipher({1: KEY1}, current=1).encrypt(RID)
    rotated = FieldCipher({1: KEY1, 2: KEY2}, current=2)
    assert rotated.decrypt(old) == RID
    assert rotated.encrypt(RID)[0] == 2
    with pytest.raises(DecryptError):
        FieldCipher({2: KEY2}, current=2).decrypt(old)


def test_bad_key_configuration_is_refused():
    with pytest.raises(ValueError):
        FieldCipher({1: b"short"}, current=1)
    with pytest.raises(ValueError):
        FieldCipher({1: KEY1}, current=2)
    with pytest.raises(ValueError):
        FieldCipher({256: KEY1}, current=256)


@given(st.text(), st.binary(max_size=32))
def test_roundtrip_for_arbitrary_text(value, aad):
    cipher = FieldCipher({1: KEY1, 3: KEY2}, current=3)
    assert cipher.decrypt(cipher.encrypt(value, aad), aad) == value


# --- blind index -------------------------------------------------------------------


def test_blind_index_is_stable_normalised_and_kind_separated():
    a = blind_index(INDEX_KEY, "resident_id", "33010619900101123x")
    assert a == blind_index(INDEX_KEY, "resident_id", " 33010619900101123X ")
    assert len(a) == 32 and int(a, 16) >= 0
    phone = blind_index(INDEX_KEY, "mobile", "13812345678")
    assert phone == blind_index(INDEX_KEY, "mobile", "+86 138-1234-5678")
    assert phone == blind_index(INDEX_KEY, "mobile", "0086 13812345678")
    same_string = "13812345678"
    assert blind_index(INDEX_KEY, "resident_id", same_string) != phone
    assert blind_index(b"j" * 32, "mobile", same_string) != phone


def test_index_and_cipher_need_configuration(unconfigured):
    assert not pii.is_configured()
    with pytest.raises(RuntimeError, match="configure"):
        pii.get_cipher()
    with pytest.raises(RuntimeError, match="configure"):
        pii.index("mobile", "13812345678")


def test_configured_index_matches_blind_index(configured):
    assert pii.index("mobile", "13812345678") == blind_index(INDEX_KEY, "mobile", "13812345678")
    assert pii.get_cipher().current == 2


# --- masks -------------------------------------------------------------------------


def test_masks():
    assert mask_resident_id(RID) == "3301**********1234"
    assert len(mask_resident_id(RID)) == 18
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile("+86 13812345678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("李小明") == "李*明"
    assert mask_name("王") == "*"
    assert mask_plate("浙A12345") == "浙A1**45"
    assert mask_plate("浙AD12345") == "浙AD***45"
    assert mask_plate("") == ""


# --- scrubbing --------------------------------------------------------------------


def test_scrub_masks_ids_and_mobiles_in_free_text():
    line = f"申请人身份证{RID}，电话13812345678，备用+86 13912345678，编号12345"
    out = scrub(line)
    assert RID not in out and "13812345678" not in out and "13912345678" not in out
    assert "3301**********1234" in out
    assert "138****5678" in out and "139****5678" in out
    assert "编号12345" in out
    assert scrub("11010519491231002x") == "1101**********002X"


def test_scrub_leaves_longer_digit_runs_alone():
    assert scrub("order 2024113812345678901") == "order 2024113812345678901"


@pytest.fixture
def scrubbed_logger():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PIIScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test_pii.{os.getpid()}.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def test_log_filter_scrubs_message_args_and_traceback(scrubbed_logger):
    logger, stream = scrubbed_logger
    logger.info("visitor %s phone %s", RID, "13812345678")
    logger.info({"mobile": "13812345678"})
    try:
        raise ValueError(f"bad id {RID}")
    except ValueError:
        logger.exception("lookup failed for %s", "13812345678")
    logger.info("broken format %s %s", "13812345678")
    out = stream.getvalue()
    assert RID not in out and "13812345678" not in out
    assert "visitor 3301**********1234 phone 138****5678" in out
    assert "ValueError: bad id 3301**********1234" in out
    assert "broken format" in out


# --- SQLAlchemy type ----------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str | None] = mapped_column(EncryptedString("citizens.id_number"))
    mobile: Mapped[str | None] = mapped_column(EncryptedString())


def test_encrypted_string_column_roundtrip_and_raw_bytes_hide_plaintext(configured):
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Citizen(id=1, id_number=RID, mobile=None))
        session.add(Citizen(id=2, id_number="张三的号码", mobile="13812345678"))
        session.commit()
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT id_number, mobile FROM citizens")).all()
    assert raw[0][1] is None
    for blob in (raw[0][0], raw[1][0], raw[1][1]):
        assert isinstance(blob, bytes) and blob[0] == 2
        assert RID.encode() not in blob and b"13812345678" not in blob
        assert "张三".encode() not in blob
    with Session(engine) as session:
        rows = session.scalars(select(Citizen).order_by(Citizen.id)).all()
        assert [(c.id_number, c.mobile) for c in rows] == [
            (RID, None),
            ("张三的号码", "13812345678"),
        ]


def test_encrypted_column_context_binds_ciphertext_to_its_column(configured):
    cipher = pii.get_cipher()
    blob = cipher.encrypt(RID, b"citizens.id_number")
    assert EncryptedString("citizens.id_number").process_result_value(blob, None) == RID
    with pytest.raises(DecryptError):
        EncryptedString("other.column").process_result_value(blob, None)
