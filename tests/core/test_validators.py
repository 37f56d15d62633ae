"""Identifier checks: GB 11643 ID numbers, GB 32100 credit codes, phones."""

from __future__ import annotations

import datetime as dt

import pytest

from shequ.core.registry.validators import (
    birth_date_from_id,
    make_id_number,
    make_uscc,
    sex_from_id,
    validate_id_number,
    validate_phone,
    validate_uscc,
)


def test_a_published_example_id_number_passes() -> None:
    # The worked example of GB 11643-1999 (Beijing, 1949-12-31, check digit X).
    assert validate_id_number("11010519491231002x") == "11010519491231002X"


def test_a_wrong_check_digit_names_the_right_one() -> None:
    good = make_id_number("310112", dt.date(1950, 3, 1), 123)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(ValueError, match=f"校验位错误（应为 {good[17]}）"):
        validate_id_number(wrong)


@pytest.mark.parametrize("value, reason", [
    ("31011219500301", "应为18位"),
    ("3101121950030112AB", "前17位应为数字"),
    ("310112195002300011", "出生日期 19500230 无效"),
])
def test_malformed_id_numbers_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        validate_id_number(value)


def test_birth_date_and_sex_come_from_the_number() -> None:
    number = make_id_number("310112", dt.date(1944, 7, 9), 35)
    assert birth_date_from_id(number) == dt.date(1944, 7, 9)
    assert sex_from_id(number) == "M"
    assert sex_from_id(make_id_number("310112", dt.date(1944, 7, 9), 36)) == "F"


def test_a_real_credit_code_passes_and_a_changed_one_fails() -> None:
    # A code whose check character (W) is right; changing the last character must fail.
    assert validate_uscc("91310000717854505W") == "91310000717854505W"
    with pytest.raises(ValueError, match="校验位错误"):
        validate_uscc("91310000717854505X")
    with pytest.raises(ValueError, match="非法字符"):
        validate_uscc("9131000071785450IO")


def test_generated_credit_codes_are_valid() -> None:
    code = make_uscc("9", "1", "310112", "MA1FL2X3")
    assert validate_uscc(code) == code


@pytest.mark.parametrize("value", ["13812345678", "+86 138 1234 5678", "021-64301234"])
def test_phones_accepted(value: str) -> None:
    assert validate_phone(value)


@pytest.mark.parametrize("value", ["1381234567", "23812345678", "abc"])
def test_phones_refused(value: str) -> None:
    with pytest.raises(ValueError, match="电话号码格式不正确"):
        validate_phone(value)
