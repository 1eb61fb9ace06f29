"""Personal data rules (service/pii.py): resident ID numbers (GB 11643), the adult rule, names,
card numbers (Luhn), the masks, and the sealing and lookup hashes kept in the database."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import pii
from service.errors import BusinessError
from service.gateway import AccountHolder
from service.member import BindCardRequest, IdentityRequest, ProfileVo
from service.pii import PersonalData
from service.secretbox import SecretBoxError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SAMPLE_ID = "11010519491231002X"  # the standard's published sample


def error_of(fn, *args) -> BusinessError:
    with pytest.raises(BusinessError) as e:
        fn(*args)
    return e.value


def with_check(first17: str) -> str:
    return first17 + pii.id_check_character(first17)


def luhn_complete(body: str) -> str:
    """`body` with the Luhn check digit appended (found by trying each, not by the formula)."""
    return next(body + d for d in "0123456789" if pii.luhn_valid(body + d))


# -- resident ID numbers ---------------------------------------------------------------------


def test_the_published_sample_is_valid_with_its_birth_date() -> None:
    resident = pii.resident_id(SAMPLE_ID)
    assert resident == pii.ResidentId(SAMPLE_ID, dt.date(1949, 12, 31))


def test_a_lower_case_x_and_surrounding_spaces_are_accepted_and_normalised() -> None:
    assert pii.resident_id(" 11010519491231002x ").number == SAMPLE_ID


@pytest.mark.parametrize("wrong", [c for c in "0123456789X" if c != "X"])
def test_every_wrong_check_character_is_refused(wrong: str) -> None:
    e = error_of(pii.resident_id, SAMPLE_ID[:17] + wrong)
    assert e.code == "VALIDATION_FAILED"
    assert e.message == "idNumber: check character does not match (GB 11643)"


@pytest.mark.parametrize(
    "birth",
    ["19900230", "19900229", "19901301", "19900001", "19900100", "18991231", "20230431"],
)
def test_impossible_birth_dates_are_refused(birth: str) -> None:
    e = error_of(pii.resident_id, with_check(f"110105{birth}002"))
    assert (e.code, e.message) == ("VALIDATION_FAILED", "idNumber: holds no valid birth date")


def test_29_february_of_a_leap_year_is_a_valid_birth_date() -> None:
    assert pii.resident_id(with_check("11010520000229002")).birth_date == dt.date(2000, 2, 29)


@pytest.mark.parametrize(
    "raw",
    [
        SAMPLE_ID[:17],  # 17 characters
        SAMPLE_ID + "1",  # 19
        "01010519491231002X",  # area code starting with 0
        "1101051949123100XX",  # X before the last place
        "11010519491231002Y",
        "110105194912310 2X",
        # Arabic-Indic digits: int() reads them, so they would give the same number a
        # second lookup hash if \d matched them.
        "1" + "".join(chr(0x660 + int(c)) for c in SAMPLE_ID[1:17]) + "X",
        "",
    ],
)
def test_malformed_numbers_are_refused(raw: str) -> None:
    e = error_of(pii.resident_id, raw)
    assert e.message == "idNumber: must be an 18-character resident ID number"


def test_the_field_named_in_errors_is_the_callers() -> None:
    assert error_of(pii.resident_id, "x", "holderId").message.startswith("holderId:")


@given(
    born=st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)),
    area=st.integers(100_000, 999_999),
    sequence=st.integers(0, 999),
)
def test_any_well_formed_number_passes_and_any_other_check_character_fails(
    born: dt.date, area: int, sequence: int
) -> None:
    first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
    right = pii.id_check_character(first17)
    assert pii.resident_id(first17 + right).birth_date == born
    for wrong in set("0123456789X") - {right}:
        with pytest.raises(BusinessError):
            pii.resident_id(first17 + wrong)


@given(first17=st.text("0123456789", min_size=17, max_size=17))
def test_the_check_character_satisfies_iso_7064_mod_11_2(first17: str) -> None:
    # The standard's own statement: sum(a_i * 2^(i-1)) over all 18 places, with X = 10 and
    # i counted from the right starting at 1, is 1 modulo 11.
    number = first17 + pii.id_check_character(first17)
    values = [10 if c == "X" else int(c) for c in number]
    assert sum(v * 2 ** (17 - i) for i, v in enumerate(values)) % 11 == 1


# -- the adult rule --------------------------------------------------------------------------


def test_one_day_before_the_18th_birthday_is_underage_and_on_it_adult() -> None:
    born = dt.date(2008, 6, 15)
    assert error_of(pii.check_adult, born, dt.date(2026, 6, 14)).code == "UNDERAGE"
    pii.check_adult(born, dt.date(2026, 6, 15))
    pii.check_adult(born, dt.date(2026, 6, 16))


def test_born_on_29_february_comes_of_age_on_1_march_of_a_common_year() -> None:
    born = dt.date(2008, 2, 29)
    assert error_of(pii.check_adult, born, dt.date(2026, 2, 28)).code == "UNDERAGE"
    pii.check_adult(born, dt.date(2026, 3, 1))


def test_born_on_29_february_comes_of_age_on_29_february_of_a_leap_year() -> None:
    born = dt.date(2000, 2, 29)  # 18 in 2018 (common) and e.g. aged 20 on 29 Feb 2020
    assert error_of(pii.check_adult, born, dt.date(2018, 2, 28)).code == "UNDERAGE"
    pii.check_adult(born, dt.date(2018, 3, 1))
    assert pii.age_on(born, dt.date(2020, 2, 28)) == 19
    assert pii.age_on(born, dt.date(2020, 2, 29)) == 20


def test_a_future_birth_date_is_invalid_not_underage() -> None:
    e = error_of(pii.check_adult, dt.date(2026, 3, 2), dt.date(2026, 3, 1))
    assert (e.code, e.message) == (
        "VALIDATION_FAILED",
        "idNumber: holds a birth date in the future",
    )


def test_a_birth_today_is_underage() -> None:
    assert error_of(pii.check_adult, dt.date(2026, 3, 1), dt.date(2026, 3, 1)).code == "UNDERAGE"


def test_the_date_that_counts_is_the_date_in_china() -> None:
    # 16:00 UTC on 28 February is midnight of 1 March in China (UTC+8, no daylight saving).
    assert pii.china_today(dt.datetime(2026, 2, 28, 15, 59, 59, tzinfo=dt.UTC)) == dt.date(
        2026, 2, 28
    )
    assert pii.china_today(dt.datetime(2026, 2, 28, 16, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 1)
    assert pii.china_today(dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)) == dt.date(2026, 7, 2)


def birthday(born: dt.date, year: int) -> dt.date:
    """The birthday in `year`: 1 March for one born on 29 February, in a common year."""
    try:
        return born.replace(year=year)
    except ValueError:
        return dt.date(year, 3, 1)


@given(born=st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)), days=st.integers(0, 40_000))
def test_age_grows_by_one_exactly_on_each_birthday(born: dt.date, days: int) -> None:
    today = born + dt.timedelta(days=days)
    age = pii.age_on(born, today)
    assert birthday(born, born.year + age) <= today < birthday(born, born.year + age + 1)


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("张三", "张三"),
        ("欧阳娜娜", "欧阳娜娜"),
        (" 张三 ", "张三"),
        ("阿卜杜·热合曼", "阿卜杜·热合曼"),
        ("阿卜杜•热合曼", "阿卜杜·热合曼"),  # bullet
        ("阿卜杜・热合曼", "阿卜杜·热合曼"),  # katakana middle dot
        ("阿卜杜.热合曼", "阿卜杜·热合曼"),  # full stop
        ("阿卜杜 · 热合曼", "阿卜杜·热合曼"),
        ("John Smith", "John Smith"),
        ("  John   Smith ", "John Smith"),
        ("Jean-Luc O'Neil", "Jean-Luc O'Neil"),
        ("\U00020001三", "\U00020001三"),  # a rare character of extension B
    ],
)
def test_names_as_printed_on_the_id_are_accepted_in_one_form(raw: str, stored: str) -> None:
    assert pii.real_name(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "张",
        "A",
        "",
        "张三1",
        "张 三",
        "·张三",
        "张三·",
        "张··三",
        "张John",
        "John  -Smith",
        "John.Smith",
        "Zhang<script>",
        "Ｊｏｈｎ",  # fullwidth Latin letters
        "张" * 31,
    ],
)
def test_other_names_are_refused(raw: str) -> None:
    e = error_of(pii.real_name, raw)
    assert e.message == "realName: must be the name on the ID, 2 to 30 letters"


# -- card numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("4111111111111111", "4111111111111111"),
        ("4111 1111 1111 1111", "4111111111111111"),
        (" 4111-1111-1111-1111 ", "4111111111111111"),
        (luhn_complete("6" * 18), luhn_complete("6" * 18)),  # 19 digits
    ],
)
def test_valid_card_numbers_are_kept_as_digits_only(raw: str, number: str) -> None:
    assert pii.card_number(raw) == number


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("4111111111111112", "is not a valid card number (Luhn check)"),
        (luhn_complete("4" * 14), "must have 16 to 19 digits"),  # 15 digits
        (luhn_complete("4" * 19), "must have 16 to 19 digits"),  # 20 digits
        ("411111111111111a", "must have 16 to 19 digits"),
        ("".join(chr(0x660 + int(c)) for c in "4111111111111111"), "must have 16 to 19 digits"),
    ],
)
def test_invalid_card_numbers_are_refused(raw: str, problem: str) -> None:
    e = error_of(pii.card_number, raw)
    assert (e.code, e.message) == ("VALIDATION_FAILED", f"cardNumber: {problem}")


@given(body=st.text("0123456789", min_size=15, max_size=18), data=st.data())
def test_luhn_catches_every_single_digit_error(body: str, data) -> None:
    number = luhn_complete(body)
    assert pii.card_number(number) == number
    place = data.draw(st.integers(0, len(number) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != number[place]]))
    assert not pii.luhn_valid(number[:place] + other + number[place + 1 :])


# -- masks -----------------------------------------------------------------------------------


def test_masks_show_only_what_identifies_nothing() -> None:
    assert pii.mask_mobile("13812345678") == "138****5678"
    assert pii.mask_id_number(SAMPLE_ID) == "1****************X"
    assert pii.mask_card("1234") == "**** **** **** 1234"
    assert pii.mask_name("张三") == "张*"
    assert pii.mask_name("欧阳娜娜") == "欧***"
    assert pii.mask_name("阿卜杜·热合曼") == "阿******"
    assert pii.mask_name("John Smith") == "J*********"


@given(first17=st.text("0123456789", min_size=17, max_size=17))
def test_a_masked_id_number_holds_neither_area_nor_birth_date(first17: str) -> None:
    masked = pii.mask_id_number(with_check(first17))
    assert len(masked) == 18
    assert masked[1:17] == "*" * 16


# -- sealing and lookup hashes ---------------------------------------------------------------


def test_a_sealed_value_opens_for_its_member_only() -> None:
    box = PersonalData(KEY)
    sealed = box.seal(pii.ID_NUMBER, SAMPLE_ID, 7)
    assert SAMPLE_ID not in sealed
    assert box.open(pii.ID_NUMBER, sealed, 7) == SAMPLE_ID
    with pytest.raises(SecretBoxError):
        box.open(pii.ID_NUMBER, sealed, 8)


def test_a_sealed_value_does_not_open_as_another_kind_or_under_another_key() -> None:
    sealed = PersonalData(KEY).seal(pii.CARD_NUMBER, "4111111111111111", 7)
    with pytest.raises(SecretBoxError):
        PersonalData(KEY).open(pii.CARD_MOBILE, sealed, 7)
    with pytest.raises(SecretBoxError):
        PersonalData(OTHER_KEY).open(pii.CARD_NUMBER, sealed, 7)


def test_sealing_twice_gives_two_different_texts() -> None:
    box = PersonalData(KEY)
    assert box.seal(pii.REAL_NAME, "张三", 7) != box.seal(pii.REAL_NAME, "张三", 7)


def test_the_lookup_hash_is_stable_and_depends_on_key_kind_and_value() -> None:
    first, again = PersonalData(KEY), PersonalData(KEY)
    digest = first.lookup_hash(pii.ID_NUMBER, SAMPLE_ID)
    assert len(digest) == 64 and SAMPLE_ID not in digest
    assert first.lookup_hash(pii.ID_NUMBER, SAMPLE_ID) == digest
    assert again.lookup_hash(pii.ID_NUMBER, SAMPLE_ID) == digest
    assert PersonalData(OTHER_KEY).lookup_hash(pii.ID_NUMBER, SAMPLE_ID) != digest
    assert first.lookup_hash(pii.CARD_NUMBER, SAMPLE_ID) != digest
    assert first.lookup_hash(pii.ID_NUMBER, SAMPLE_ID[:17] + "0") != digest


def test_without_a_secret_key_there_is_no_sealer() -> None:
    assert PersonalData.from_setting("") is None
    box = PersonalData.from_setting("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert box is not None
    assert box.lookup_hash(pii.ID_NUMBER, SAMPLE_ID) == PersonalData(KEY).lookup_hash(
        pii.ID_NUMBER, SAMPLE_ID
    )


def test_requests_and_profiles_keep_personal_data_out_of_their_repr() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    shown = [
        IdentityRequest("张三", SAMPLE_ID),
        BindCardRequest("4111111111111111", "招商银行", "13812345678"),
        ProfileVo(7, "13812345678", "INVESTOR", now, True, "张三", SAMPLE_ID, now, False, None),
        AccountHolder(7, "张三", SAMPLE_ID, "4111111111111111", "13812345678"),
    ]
    for value in shown:
        for plain in ("张三", SAMPLE_ID, "4111111111111111", "13812345678"):
            assert plain not in repr(value), type(value).__name__
