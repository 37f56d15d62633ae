"""Checks of identifiers used in the thematic database: ID numbers, credit codes, phones."""

from __future__ import annotations

import datetime as dt
import re

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


def id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def validate_id_number(value: str) -> str:
    """Return the ID number normalised (upper-case X) or raise ValueError saying why."""
    v = value.strip().upper()
    if len(v) != 18:
        raise ValueError(f"身份证号应为18位，实为{len(v)}位")
    if not v[:17].isdigit() or not (v[17].isdigit() or v[17] == "X"):
        raise ValueError("身份证号前17位应为数字，末位为数字或X")
    try:
        dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise ValueError(f"身份证号中的出生日期 {v[6:14]} 无效") from None
    if v[17] != id_check_char(v[:17]):
        raise ValueError(f"身份证号校验位错误（应为 {id_check_char(v[:17])}）")
    return v


def birth_date_from_id(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def sex_from_id(value: str) -> str:
    """'M' or 'F' from the sequence digit (odd is male)."""
    return "M" if int(value[16]) % 2 == 1 else "F"


def make_id_number(region: str, birth: dt.date, sequence: int) -> str:
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + id_check_char(body)


def org_code_check(first8: str) -> str:
    total = sum(ORG_CHARS.index(c) * w for c, w in zip(first8, ORG_WEIGHTS, strict=True))
    r = 11 - total % 11
    return {10: "X", 11: "0"}.get(r, str(r))


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Unified social credit code (GB 32100-2015): 18 characters and a check character."""
    v = value.strip().upper()
    if len(v) != 18:
        raise ValueError(f"统一社会信用代码应为18位，实为{len(v)}位")
    bad = [c for c in v if c not in USCC_CHARS]
    if bad:
        raise ValueError(f"统一社会信用代码含非法字符 {''.join(sorted(set(bad)))}")
    if v[17] != uscc_check_char(v[:17]):
        raise ValueError(f"统一社会信用代码校验位错误（应为 {uscc_check_char(v[:17])}）")
    return v


def make_uscc(dept: str, kind: str, region: str, org_body: str) -> str:
    """Build a valid code from its parts: department (1 char), kind (1), region (6), org code body (8)."""
    org = org_body + org_code_check(org_body)
    first17 = dept + kind + region + org
    return first17 + uscc_check_char(first17)


def validate_phone(value: str) -> str:
    v = re.sub(r"[\s]", "", value)
    if v.startswith("+86"):
        v = v[3:]
    if not (MOBILE_RE.match(v) or LANDLINE_RE.match(v)):
        raise ValueError("电话号码格式不正确（手机号11位，以1开头；座机如 021-64301234）")
    return v
