"""Identifiers for synthetic people and organisations: valid and unique ID numbers (GB 11643),
mobile and landline numbers, unified social credit codes (GB 32100)."""

from __future__ import annotations

import datetime as dt
import random
from operator import mul

from shequ.core.registry.validators import ID_CHECK, ID_WEIGHTS, make_uscc
from shequ.sim.names import WeightedChoice, choice

# Shanghai districts (GB/T 2260): Minhang first, then where people moved from.
SHANGHAI_REGIONS = WeightedChoice((
    ("310112", 70), ("310104", 4), ("310101", 3), ("310105", 3), ("310106", 2), ("310107", 3),
    ("310109", 2), ("310110", 3), ("310113", 2), ("310115", 3), ("310116", 1), ("310117", 2),
    ("310118", 1), ("310120", 1),
))
# Counties that send many people to Shanghai (来沪人员), by province.
OTHER_REGIONS = WeightedChoice((
    ("340122", 4), ("341221", 5), ("342221", 3), ("340826", 3), ("341125", 3), ("341522", 2),  # 安徽
    ("320382", 3), ("321323", 3), ("320923", 2), ("321282", 1),  # 江苏
    ("411521", 3), ("412726", 3), ("411627", 2), ("410221", 1),  # 河南
    ("511621", 2), ("513030", 2), ("510122", 1),  # 四川
    ("362426", 2), ("360124", 1), ("362329", 1),  # 江西
    ("421127", 2), ("420984", 1),  # 湖北
    ("372925", 2), ("371522", 1),  # 山东
    ("330326", 1), ("330727", 1),  # 浙江
    ("430524", 1), ("431022", 1),  # 湖南
    ("350583", 1), ("350322", 1),  # 福建
    ("522121", 1), ("500236", 1), ("622421", 1), ("232301", 1),  # 贵州 重庆 甘肃 黑龙江
))

MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "173", "176", "177",
                   "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "198",
                   "199")
MINHANG_EXCHANGES = ("6430", "6431", "6435", "6436", "6437", "6450", "5435", "5439", "3409")


class IdentityMaker:
    """Hands out identifiers, never the same one twice within one run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.id_numbers: set[str] = set()
        self.phones: set[str] = set()
        self.uscc: set[str] = set()

    def id_number(self, region: str, birth: dt.date, sex: str) -> str:
        """A valid 18-character ID number whose birth date and sex digit match (the same
        result as validators.make_id_number, computed faster)."""
        rng = self.rng
        head = f"{region}{birth.year}{birth.month:02d}{birth.day:02d}"
        while True:
            # sequence: two digits of the police station, then odd for men and even for women
            seq = int(rng.random() * 500) * 2 + (1 if sex == "M" else 0)
            body = f"{head}{seq:03d}"
            value = body + ID_CHECK[sum(map(mul, map(int, body), ID_WEIGHTS)) % 11]
            if value not in self.id_numbers:
                self.id_numbers.add(value)
                return value

    def region(self, local: bool) -> str:
        return SHANGHAI_REGIONS(self.rng) if local else OTHER_REGIONS(self.rng)

    def mobile(self) -> str:
        rng = self.rng
        while True:
            value = choice(rng, MOBILE_PREFIXES) + f"{int(rng.random() * 10 ** 8):08d}"
            if value not in self.phones:
                self.phones.add(value)
                return value

    def landline(self) -> str:
        rng = self.rng
        while True:
            value = f"021-{rng.choice(MINHANG_EXCHANGES)}{rng.randrange(10 ** 4):04d}"
            if value not in self.phones:
                self.phones.add(value)
                return value

    def credit_code(self, dept: str = "9", kind: str = "1", region: str = "310112") -> str:
        """A valid unified social credit code; enterprises 91…, individual businesses 92…,
        social organisations 51/52/53…."""
        rng = self.rng
        alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        while True:
            # organisation codes issued since 2015 begin with MA (the 9th character is the
            # check of the old organisation code)
            body = "MA" + "".join(rng.choice(alphabet) for _ in range(6))
            value = make_uscc(dept, kind, region, body)
            if value not in self.uscc:
                self.uscc.add(value)
                return value
