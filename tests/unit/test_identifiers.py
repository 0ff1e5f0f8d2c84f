import pytest

from renkei.domain.identifiers import (
    check_registration_number,
    corporate_number_is_valid,
    houjin_check_digit,
    normalise_corporate_number,
    normalise_postal_code,
)


def test_check_digit_worked_example():
    # base 123456789012: digits from the right × 1,2,1,2… sum to 74; 74 mod 9 = 2; 9 − 2 = 7
    assert houjin_check_digit("123456789012") == 7


@pytest.mark.parametrize(
    "number",
    ["T7010705000725", "T7120001168421", "T4011001098993", "T1180301018771", "7123456789012"],
)
def test_published_registration_numbers_pass(number):
    chk = check_registration_number(number)
    assert chk.check_digit_ok
    assert chk.value.startswith("T") and len(chk.value) == 14
    assert chk.corporate_number == chk.value[1:]


@pytest.mark.parametrize(
    "number",
    ["T1000000000001",  # freee's spec example: check digit would be 8
     "T8010705000725",  # one digit off from a published number
     "T7010705000726"],
)
def test_wrong_check_digit_is_an_error_for_corporations(number):
    with pytest.raises(ValueError, match="check digit"):
        check_registration_number(number)


def test_wrong_check_digit_is_a_warning_for_sole_traders():
    chk = check_registration_number("T1000000000001", sole_trader=True)
    assert not chk.check_digit_ok
    assert chk.warnings and "check digit" in chk.warnings[0]
    assert chk.corporate_number is None


@pytest.mark.parametrize("bad", ["T012345678901", "T12345", "X7010705000725", "T70107050007250", ""])
def test_malformed_registration_numbers(bad):
    with pytest.raises(ValueError):
        check_registration_number(bad)


def test_registration_number_accepts_full_width_and_missing_t():
    assert check_registration_number("Ｔ７０１０７０５０００７２５").value == "T7010705000725"
    assert check_registration_number("7010705000725").value == "T7010705000725"
    assert check_registration_number("T7010-7050-00725").value == "T7010705000725"


def test_corporate_number():
    assert normalise_corporate_number("４０１１００１０９８９９３") == "4011001098993"
    assert corporate_number_is_valid("1180301018771")
    assert not corporate_number_is_valid("1180301018772")
    with pytest.raises(ValueError, match="check digit"):
        normalise_corporate_number("2180301018771")
    with pytest.raises(ValueError, match="13 digits"):
        normalise_corporate_number("0180301018771")


@pytest.mark.parametrize(
    "raw, expected",
    [("100-0001", "100-0001"), ("1000001", "100-0001"), ("〒100-0001", "100-0001"),
     ("１００－０００１", "100-0001"), (" 〒 530 0001 ", "530-0001")],
)
def test_postal_codes(raw, expected):
    assert normalise_postal_code(raw) == expected


@pytest.mark.parametrize("bad", ["100-001", "10000011", "abc-defg", "", "100_0001x"])
def test_bad_postal_codes(bad):
    with pytest.raises(ValueError, match="7 digits"):
        normalise_postal_code(bad)
