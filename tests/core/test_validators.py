from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, model_validator

from core.validators import (
    PLATE_COLOURS,
    USCC,
    InvalidValue,
    Mobile,
    ResidentId,
    age_on,
    normalize_mobile,
    normalize_plate,
    normalize_resident_id,
    normalize_uscc,
    resident_id_birth_date,
    resident_id_gender,
)

# Independent oracles (not the module's own helpers), straight from the standards.
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
PROVINCES = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42]
PROVINCES += [43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82]


def with_id_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def with_uscc_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return first17 + USCC_ALPHABET[(31 - total % 31) % 31]


def code_of(call, *args) -> str:
    with pytest.raises(InvalidValue) as info:
        call(*args)
    return info.value.code


# --- resident ID -------------------------------------------------------------------


def test_published_example_id_is_valid_and_lower_case_x_is_normalised():
    assert with_id_check("11010519491231002") == "11010519491231002X"
    assert normalize_resident_id(" 110105 19491231 002x ") == "11010519491231002X"


def test_id_details_birth_date_gender_and_age():
    rid = with_id_check("33010620000229101")
    assert resident_id_birth_date(rid) == date(2000, 2, 29)
    assert resident_id_gender(rid) == "male"
    assert resident_id_gender(with_id_check("33010620000229102")) == "female"
    assert age_on(rid, date(2018, 2, 28)) == 17
    assert age_on(rid, date(2018, 3, 1)) == 18
    assert age_on("11010519491231002X", date(2024, 12, 31)) == 75


def test_invalid_ids_get_distinct_chinese_messages():
    cases = {
        "1101051949123100": "身份证号码格式错误，应为18位",
        "11010519491231002Y": "身份证号码格式错误，应为18位",
        "110105194912310021": "身份证号码校验位错误",
        with_id_check("11010519490230002"): "身份证号码出生日期无效",  # Feb 30
        with_id_check("11010528990101002"): "身份证号码出生日期超出合理范围",
        with_id_check("11010518991231002"): "身份证号码出生日期超出合理范围",
        with_id_check("99010519491231002"): "身份证号码地区代码错误",
    }
    for value, message in cases.items():
        with pytest.raises(InvalidValue) as info:
            normalize_resident_id(value)
        assert info.value.code == "invalid_resident_id"
        assert str(info.value) == message, value


def test_birth_date_after_today_is_refused_relative_to_given_today():
    rid = with_id_check("33010620240601101")
    assert normalize_resident_id(rid, today=date(2024, 6, 1)) == rid
    assert code_of(lambda: normalize_resident_id(rid, today=date(2024, 5, 31))) == ("invalid_resident_id")


def test_full_width_digits_are_refused():
    assert code_of(normalize_resident_id, "１１０１０５１９４９１２３１００２X")


valid_id_bases = st.builds(
    lambda prov, area, born, seq: f"{prov:02d}{area:04d}{born:%Y%m%d}{seq:03d}",
    st.sampled_from(PROVINCES),
    st.integers(0, 9999),
    st.dates(date(1900, 1, 1), date(2020, 12, 31)),
    st.integers(0, 999),
)


@given(valid_id_bases)
def test_any_valid_base_with_computed_check_digit_is_accepted(base):
    assert normalize_resident_id(with_id_check(base)) == with_id_check(base)


@given(valid_id_bases, st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_is_rejected(base, position, shift):
    rid = with_id_check(base)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    old = alphabet.index(rid[position])
    new = alphabet[(old + shift) % len(alphabet)]
    if new == rid[position]:
        return
    with pytest.raises(InvalidValue):
        normalize_resident_id(rid[:position] + new + rid[position + 1 :])


# --- USCC ------------------------------------------------------------------------------


def test_published_uscc_example_is_valid():
    assert with_uscc_check("91350100M000100Y4") == "91350100M000100Y43"
    assert normalize_uscc("91350100m000100y43") == "91350100M000100Y43"


def test_computed_usccs_of_several_types_are_valid():
    for first17 in ("91330106MA27XK1L2", "12100000400000624", "52110000MJ0000000"):
        assert normalize_uscc(with_uscc_check(first17)) == with_uscc_check(first17)


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y44",  # check character
        "91350100M000100Y4",  # length
        "91350100M000I00Y43",  # I is not in the alphabet
        "91350100M000100O43",  # nor O
        with_uscc_check("X1350100M000100Y4"),  # unknown registration authority
        with_uscc_check("99350100M000100Y4"),  # no type 9 under authority 9
        with_uscc_check("913501A0M000100Y4"),  # division code must be digits
    ],
)
def test_invalid_usccs_are_refused(value):
    assert code_of(normalize_uscc, value) == "invalid_uscc"


uscc_bases = st.builds(
    lambda head, region, org: head + region + org,
    st.sampled_from(["91", "92", "93", "11", "12", "51", "52", "53", "Y1", "N2"]),
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)


@given(uscc_bases, st.integers(0, 17), st.integers(1, 30))
def test_uscc_any_single_substitution_is_rejected(base, pos, shift):
    code = with_uscc_check(base)
    assert normalize_uscc(code) == code
    new = USCC_ALPHABET[(USCC_ALPHABET.index(code[pos]) + shift) % 31]
    with pytest.raises(InvalidValue):
        normalize_uscc(code[:pos] + new + code[pos + 1 :])


# --- mobile ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["13812345678", "+86 138-1234-5678", "008613812345678", "+8619912345678"])
def test_mobile_numbers_are_normalised(raw):
    assert normalize_mobile(raw) in ("13812345678", "19912345678")


@pytest.mark.parametrize(
    "raw",
    ["138123456789", "1381234567", "12812345678", "1381234567a", "８613812345678"],
)
def test_bad_mobile_numbers_are_refused(raw):
    with pytest.raises(InvalidValue) as info:
        normalize_mobile(raw)
    assert info.value.code == "invalid_mobile"
    assert "手机号码" in info.value.message


# --- plates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plate", "colour", "expected"),
    [
        ("浙A·12345", "blue", "浙A12345"),
        ("浙a 1b2c3", "yellow", "浙A1B2C3"),
        ("京N12345", "black", "京N12345"),
        ("浙AD12345", "green", "浙AD12345"),
        ("浙AF1A234", "green", "浙AF1A234"),
        ("浙A12345D", "green", "浙A12345D"),
        ("浙A1234警", "white", "浙A1234警"),
        ("浙A1234学", "yellow", "浙A1234学"),
        ("浙A1234挂", "yellow", "浙A1234挂"),
        ("粤Z1234港", "black", "粤Z1234港"),
    ],
)
def test_valid_plates_of_each_kind(plate, colour, expected):
    assert normalize_plate(plate, colour) == expected


@pytest.mark.parametrize(
    "plate",
    [
        "浙I12345",
        "浙O12345",
        "浙A1234O",
        "浙A1I345",
        "浙A1234",
        "X A12345",
        "浙A123456D",
    ],
)
def test_malformed_plates_are_refused(plate):
    assert code_of(normalize_plate, plate, "blue") == "invalid_plate"


@pytest.mark.parametrize(
    ("plate", "colour"),
    [
        ("浙A12345", "green"),
        ("浙A12345", "white"),
        ("浙AD12345", "blue"),
        ("浙A12345D", "yellow"),
        ("浙A1234警", "blue"),
        ("浙A1234学", "blue"),
        ("浙A1234挂", "white"),
        ("浙A12345", "red"),
    ],
)
def test_plate_colour_mismatches_are_refused(plate, colour):
    assert code_of(normalize_plate, plate, colour) == "invalid_plate_colour"


def test_plate_colour_list_is_fixed():
    assert PLATE_COLOURS == ("blue", "yellow", "green", "white", "black")


# --- pydantic --------------------------------------------------------------------------------


class Visitor(BaseModel):
    id_number: ResidentId
    mobile: Mobile
    company: USCC | None = None
    plate: str | None = None
    plate_colour: str | None = None

    @model_validator(mode="after")
    def _plate(self):
        if self.plate is not None:
            self.plate = normalize_plate(self.plate, self.plate_colour or "")
        return self


def test_pydantic_model_normalises_fields():
    v = Visitor(
        id_number="11010519491231002x",
        mobile="+86 13812345678",
        company="91350100m000100y43",
        plate="浙a·12345",
        plate_colour="blue",
    )
    assert (v.id_number, v.mobile, v.company, v.plate) == (
        "11010519491231002X",
        "13812345678",
        "91350100M000100Y43",
        "浙A12345",
    )


def test_pydantic_errors_carry_the_chinese_message_and_code():
    with pytest.raises(ValidationError) as info:
        Visitor(id_number="110105194912310021", mobile="12345")
    errors = {e["loc"][0]: e for e in info.value.errors()}
    assert str(errors["id_number"]["ctx"]["error"]) == "身份证号码校验位错误"
    assert errors["id_number"]["ctx"]["error"].code == "invalid_resident_id"
    assert errors["mobile"]["ctx"]["error"].code == "invalid_mobile"


def test_pydantic_plate_colour_mismatch_is_reported():
    with pytest.raises(ValidationError) as info:
        Visitor(
            id_number="11010519491231002X",
            mobile="13812345678",
            plate="浙AD12345",
            plate_colour="blue",
        )
    error = info.value.errors()[0]["ctx"]["error"]
    assert error.code == "invalid_plate_colour"
    assert "绿" in str(error)
