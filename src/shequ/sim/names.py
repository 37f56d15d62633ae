"""Chinese names for the synthetic subdistrict: people (by generation and sex), residents'
committees, compounds (新村 style), roads, organisations and shops.

Surname weights follow published frequency tables: one for old Shanghai families (张王陈李徐
朱周沈吴顾陆…), one national (王李张刘陈杨…) for people who came from other provinces.
Given names follow the fashion of the decade a person was born in.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")

# (surname, weight per mille) — Shanghai registered population, rounded
SHANGHAI_SURNAMES: tuple[tuple[str, float], ...] = (
    ("张", 48), ("王", 46), ("陈", 44), ("李", 32), ("徐", 30), ("朱", 25), ("周", 24), ("沈", 22),
    ("吴", 21), ("顾", 19), ("陆", 18), ("黄", 18), ("杨", 17), ("刘", 16), ("钱", 13), ("姚", 11),
    ("金", 11), ("孙", 11), ("高", 9), ("胡", 9), ("许", 8), ("赵", 8), ("蒋", 8), ("施", 8),
    ("曹", 7), ("潘", 7), ("蔡", 6), ("冯", 6), ("唐", 6), ("马", 5), ("汤", 5), ("龚", 5),
    ("郑", 5), ("宋", 5), ("范", 5), ("袁", 5), ("何", 5), ("邱", 4), ("严", 4), ("倪", 4),
    ("丁", 4), ("叶", 4), ("俞", 4), ("郁", 4), ("盛", 3), ("薛", 3), ("秦", 3), ("戴", 3),
    ("邵", 3), ("方", 3), ("陶", 3), ("夏", 3), ("毛", 3), ("杜", 2), ("卫", 2), ("奚", 1),
    ("瞿", 1), ("须", 1), ("储", 1), ("屠", 1), ("卢", 2), ("林", 3), ("孔", 1), ("欧阳", 0.3),
)
NATIONAL_SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71), ("李", 70), ("张", 67), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 22), ("赵", 20),
    ("吴", 20), ("周", 19), ("徐", 15), ("孙", 14), ("马", 13), ("朱", 12), ("胡", 12), ("郭", 12),
    ("何", 11), ("高", 10), ("林", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 7), ("宋", 7),
    ("唐", 7), ("许", 6), ("韩", 6), ("冯", 6), ("邓", 6), ("曹", 6), ("彭", 5), ("曾", 5),
    ("肖", 5), ("田", 5), ("董", 5), ("袁", 5), ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4),
    ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 3), ("魏", 3), ("吕", 3), ("丁", 3),
    ("任", 3), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3),
    ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3), ("廖", 3), ("贾", 3), ("夏", 2),
    ("韦", 2), ("付", 2), ("方", 2), ("白", 2), ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2),
    ("邱", 2), ("江", 2), ("尹", 2), ("薛", 2), ("闫", 2), ("段", 2), ("雷", 2), ("侯", 2),
    ("龙", 2), ("史", 2), ("陶", 2), ("黎", 2), ("贺", 2), ("顾", 2), ("毛", 2), ("郝", 2),
    ("龚", 2), ("邵", 2), ("万", 2), ("钱", 2), ("严", 2), ("覃", 1), ("武", 2), ("戴", 2),
    ("莫", 1), ("孔", 1), ("向", 1), ("汤", 1),
)

# Given names by the era of birth: full names people were commonly given, and two pools of
# characters from which further two-character names are composed.
GIVEN: dict[tuple[str, str], tuple[tuple[str, ...], str, str]] = {
    ("old", "M"): (
        ("福根", "金根", "宝根", "根宝", "荣生", "德明", "德华", "志明", "国良", "国平", "永康",
         "福林", "金龙", "志高", "文杰", "仁杰", "惠民", "关林", "耀祖", "炳荣", "培德", "鸿生",
         "伯荣", "海生", "杏生", "金福", "明德", "德昌", "锦荣", "树德", "庆生", "阿四", "小弟"),
        "德荣福金宝根国永家文仁树耀炳培鸿伯锦庆志惠明", "生根荣明华昌林福德良平康祥宝发泉龙"),
    ("mid", "M"): (
        ("建国", "建华", "建平", "建民", "国庆", "卫国", "卫东", "援朝", "跃进", "红兵", "志强",
         "志华", "国华", "伟民", "建新", "振华", "国强", "新民", "立新", "海明", "永明", "为民",
         "爱国", "文彬", "德兴", "和平", "胜利", "建军", "向东", "红卫", "金海", "小平"),
        "建国卫志伟新立海永振文德红跃爱向", "国华平民新强东明军兵林忠勇辉彬荣"),
    ("late", "M"): (
        ("伟", "磊", "勇", "军", "强", "斌", "杰", "涛", "峰", "俊", "华", "明", "刚", "晓东",
         "海峰", "晓明", "志刚", "建锋", "海涛", "振宇", "俊杰", "文斌", "晓峰", "立群", "佳斌",
         "文俊", "伟峰", "一鸣", "晓伟", "晨光", "永杰", "磊"),
        "志建晓海文俊伟立永振国云佳春卫明", "强峰明华东刚军斌杰伟勇平涛磊辉锋"),
    ("young", "M"): (
        ("浩", "宇", "轩", "晨", "杰", "鑫", "磊", "昊", "博", "凯", "俊杰", "浩然", "宇航",
         "晨阳", "子豪", "天宇", "文博", "嘉伟", "家豪", "思远", "佳豪", "逸飞", "鹏飞", "一帆",
         "俊豪", "志豪", "子健", "辰逸", "晨昊", "伟杰"),
        "子浩宇俊嘉家天思佳逸鹏一志文晨昊", "豪然航阳宇博伟远飞帆杰健逸辰昊轩"),
    ("kid", "M"): (
        ("梓轩", "浩宇", "宇轩", "子墨", "沐宸", "奕辰", "一诺", "皓轩", "俊熙", "睿泽", "子睿",
         "梓睿", "浩然", "宇泽", "煜祺", "铭轩", "子涵", "锦程", "思源", "承泽", "昊然", "明哲",
         "嘉懿", "瑞霖", "恩泽", "安然", "逸辰", "宸熙"),
        "梓子浩宇沐奕皓俊睿煜铭锦承昊明嘉瑞恩逸宸", "轩墨宸辰熙泽睿然祺程源哲懿霖恩"),
    ("old", "F"): (
        ("秀英", "桂英", "凤英", "玉兰", "秀珍", "淑珍", "桂兰", "金娣", "根娣", "彩娣", "杏娣",
         "小妹", "美英", "兰英", "菊英", "惠英", "月英", "雪英", "素珍", "宝珍", "佩华", "佩玉",
         "蕙芳", "丽娟", "慧芬", "玉珍", "翠英", "琴芳", "云仙", "招娣", "引娣"),
        "秀桂凤玉淑金彩杏美兰菊惠月雪素宝佩蕙慧翠琴云", "英兰珍娣芳华玉仙贞娟妹芬宝琴凤"),
    ("mid", "F"): (
        ("红梅", "丽华", "海燕", "美华", "建英", "红英", "秀兰", "惠芳", "丽萍", "玉芳", "国英",
         "卫红", "红霞", "小红", "美玲", "爱华", "慧敏", "雅琴", "月华", "亚萍", "幼萍", "敏华",
         "春燕", "惠琴", "丽君", "凤娟", "静娟", "琴", "萍", "敏", "英", "华"),
        "红丽海美建秀惠玉国卫小爱慧雅月亚敏春静凤", "梅华燕英兰芳萍红霞玲敏琴君娟珍"),
    ("late", "F"): (
        ("丽", "静", "燕", "艳", "娟", "敏", "洁", "婷", "芳", "颖", "晓燕", "丽娜", "海燕",
         "晓红", "佳", "慧", "雯", "琳", "晓敏", "佳丽", "晓静", "蕾", "莉", "倩", "瑾", "怡",
         "文静", "晓雯", "晶晶", "燕萍"),
        "晓丽佳文海雪春静慧美燕晶雅思", "燕娜红敏丽静雯琳颖萍婷洁霞莉娟"),
    ("young", "F"): (
        ("婷婷", "雨婷", "佳怡", "欣怡", "诗雨", "思琪", "梦婷", "文静", "雪", "倩", "佳琪",
         "嘉怡", "晓雪", "雯雯", "怡然", "馨怡", "佳颖", "心怡", "雨晴", "梦瑶", "晨曦", "琳",
         "悦", "璐", "菲", "诗琪"),
        "雨佳欣诗思梦嘉晓馨心晨怡雯", "婷怡雨琪瑶晴曦颖雪悦璐菲洁"),
    ("kid", "F"): (
        ("一诺", "梓涵", "欣怡", "诗涵", "梓萱", "雨桐", "若汐", "子涵", "语嫣", "可欣", "依诺",
         "思彤", "芷若", "沐晴", "安琪", "梓晴", "语桐", "欣妍", "悦彤", "佳怡", "清妍", "一涵",
         "艺涵", "雨萱", "若曦"),
        "梓诗雨若子语可依思芷沐安欣悦清艺一", "涵萱桐汐嫣欣诺彤若晴琪妍曦悦"),
}


def era(birth_year: int) -> str:
    if birth_year < 1950:
        return "old"
    if birth_year < 1970:
        return "mid"
    if birth_year < 1990:
        return "late"
    if birth_year < 2005:
        return "young"
    return "kid"


class WeightedChoice(Generic[T]):
    """Draws from weighted items with one rng call (cumulative weights, computed once)."""

    def __init__(self, pairs: tuple[tuple[T, float], ...]) -> None:
        self.items = [p[0] for p in pairs]
        self.cum = list(accumulate(p[1] for p in pairs))
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random) -> T:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


def randint(rng: random.Random, a: int, b: int) -> int:
    """Like rng.randint, several times faster (one float draw; fine for synthetic data)."""
    return a + int(rng.random() * (b - a + 1))


def choice(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


SHANGHAI_SURNAME = WeightedChoice(SHANGHAI_SURNAMES)
NATIONAL_SURNAME = WeightedChoice(NATIONAL_SURNAMES)


def given_name(rng: random.Random, sex: str, birth_year: int) -> str:
    """A given name of one or two characters, in the fashion of the birth decade."""
    full, first, second = GIVEN[(era(birth_year), sex)]
    if rng.random() < 0.55:
        return choice(rng, full)
    a, b = choice(rng, first), choice(rng, second)
    if a == b:
        return a + b if rng.random() < 0.5 else a
    return a + b


def person_name(rng: random.Random, sex: str, birth_year: int, *, surname: str | None = None,
                local: bool = True) -> str:
    """A full name; children pass their father's surname, migrants use the national table."""
    if surname is None:
        surname = (SHANGHAI_SURNAME if local else NATIONAL_SURNAME)(rng)
    return surname + given_name(rng, sex, birth_year)


# --- residents' committees ---------------------------------------------------------------

# The 35 committees listed in 2004 (jiangchuan-facts.md), in that order.
REAL_COMMITTEES: tuple[str, ...] = (
    "北街", "河东", "华江新村第一", "华江新村第二", "高华新村第二", "高华新村第三", "东风新村第一",
    "东风新村第三", "新闵新村", "沧源新村第一", "沧源新村第二", "沧源新村第三", "兰坪新村第一",
    "兰坪新村第二", "汽轮新村第一", "汽轮新村第三", "瑞丽新村", "电机新村第一", "电机新村第二",
    "电机新村第四", "电机新村第五", "红旗新村第一", "红旗新村第二", "红旗新村第三", "红旗新村第四",
    "红旗新村第五", "红旗新村第七", "昆阳新村第一", "昆阳新村第三", "鹤北新村第一", "鹤北新村第三",
    "鹤庆新村第一", "鹤庆新村第二", "紫藤新园", "富仕名邸",
)
# Plausible later committees in the same style (gaps in the numbering, newer estates).
EXTRA_COMMITTEES: tuple[str, ...] = (
    "华江新村第三", "高华新村第一", "东风新村第二", "汽轮新村第二", "电机新村第三", "红旗新村第六",
    "昆阳新村第二", "鹤北新村第二", "鹤庆新村第三", "沧源新村第四", "兰坪新村第三", "瑞丽新苑",
    "江川新苑", "碧江苑", "永德苑", "景东新村",
)
CN_DIGITS = "〇一二三四五六七八九十"


def cn_number(n: int) -> str:
    """1 → 一, 12 → 十二, 20 → 二十 (up to 99)."""
    if n <= 10:
        return CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_DIGITS[tens]) + "十" + (CN_DIGITS[ones] if ones else "")


def _stem_key(name: str) -> str:
    return name.split("新村")[0] if "新村" in name else name


def committee_names(rng: random.Random, count: int) -> list[str]:
    """``count`` committee names (without 居委会): the real ones first, then generated ones
    placed next to their namesakes so that related committees stay neighbours."""
    names = list(REAL_COMMITTEES[:count])
    extra = count - len(names)
    if extra > 0:
        pool = list(EXTRA_COMMITTEES)
        chosen = rng.sample(pool, extra)
        for name in sorted(chosen, key=pool.index):
            stem, ordinal = committee_stem(name)
            same = [i for i, n in enumerate(names) if _stem_key(n) == _stem_key(name)]
            before = [i for i in same if (committee_stem(names[i])[1] or 0) < (ordinal or 0)]
            at = max(before) + 1 if before else same[0] if same else len(names)
            names.insert(at, name)
    return names


def committee_stem(name: str) -> tuple[str, int | None]:
    """红旗新村第五 → (红旗, 5); 北街 → (北街, None); 紫藤新园 → (紫藤新园, None)."""
    if "新村第" in name:
        stem, ordinal = name.split("新村第")
        return stem, CN_DIGITS.index(ordinal) if ordinal in CN_DIGITS else None
    return name, None


NEW_ESTATE_SUFFIXES = ("苑", "新苑", "花园", "公寓", "家园", "雅苑", "景苑", "佳苑", "小区")
PART_SUFFIXES = ("东区", "西区", "南区", "北区", "二期", "三期")


def compound_names(rng: random.Random, committee: str, kinds: list[str], used: set[str]) -> list[str]:
    """Names of the compounds of one committee, e.g. 红旗五村, 红旗五村东区, 红旗苑.

    ``kinds`` gives each compound's estate type (old, mixed, new); ``used`` keeps names
    unique across the subdistrict.
    """
    stem, ordinal = committee_stem(committee)
    if ordinal is not None:
        primary = f"{stem}{cn_number(ordinal)}村"
    elif committee.endswith(("新村", "新园", "名邸", "苑")):
        primary = committee
    else:
        primary = f"{committee}新村"
    short = stem if ordinal is not None else stem.removesuffix("新村")
    out: list[str] = []
    for kind in kinds:
        candidates: list[str] = []
        candidates.append(primary)
        candidates += [primary + s for s in PART_SUFFIXES]
        suffixes = list(NEW_ESTATE_SUFFIXES)
        rng.shuffle(suffixes)
        candidates += [short + s for s in suffixes]
        if kind == "new" and out:  # a newer estate beside the old one gets its own name
            candidates = candidates[-len(suffixes):] + candidates[:-len(suffixes)]
        name = next((c for c in candidates if c not in used), None)
        n = 4
        while name is None:
            name = f"{primary}{cn_number(n)}期"
            name = None if name in used else name
            n += 1
        used.add(name)
        out.append(name)
    return out


# --- roads ---------------------------------------------------------------------------------

MAIN_ROADS_EW = ("江川路", "东川路", "剑川路")  # south to north
MAIN_ROADS_NS = ("沪闵路", "鹤庆路", "兰坪路", "瑞丽路", "昆阳路")  # west to east
# Minhang names its roads after places in Yunnan; these are the smaller roads (支路).
MINOR_ROADS: tuple[str, ...] = (
    "华坪路", "永德路", "碧江路", "景东路", "思茅路", "元江路", "金平路", "通海路", "石屏路",
    "景谷路", "双柏路", "富宁路", "华宁路", "宜良路", "弥勒路", "澄江路", "楚雄路", "蒙自路",
    "开远路", "陆良路", "罗平路", "师宗路", "禄丰路", "易门路", "峨山路", "新平路", "墨江路",
    "宁洱路", "镇沅路", "孟连路", "勐海路", "耿马路", "双江路", "凤庆路", "永平路", "漾濞路",
    "宾川路", "弥渡路", "巍山路", "洱源路", "祥云路", "南涧路", "云县路", "景洪路", "临沧路",
    "个旧路", "宣威路", "会泽路", "寻甸路", "嵩明路",
)


# --- organisations and shops ----------------------------------------------------------------

BRAND_CHARS = "华鑫盛达通泰宏信宇恒源科新金瑞丰裕茂祥隆嘉诚创联德弘润腾凯远安晟汇佳益和兴久博申江沪闵"

# (name word, industry as in GB/T 4754 门类, employees range)
ENTERPRISE_TRADES: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("机电设备", "制造业", (20, 400)), ("电气", "制造业", (15, 600)), ("机械制造", "制造业", (20, 500)),
    ("精密机械", "制造业", (10, 200)), ("汽轮机配件", "制造业", (30, 300)), ("新材料科技", "制造业", (10, 150)),
    ("电子科技", "信息传输、软件和信息技术服务业", (5, 120)),
    ("信息技术", "信息传输、软件和信息技术服务业", (5, 200)),
    ("软件", "信息传输、软件和信息技术服务业", (5, 150)),
    ("环保科技", "科学研究和技术服务业", (5, 80)), ("检测技术", "科学研究和技术服务业", (5, 60)),
    ("物流", "交通运输、仓储和邮政业", (10, 200)), ("贸易", "批发和零售业", (2, 40)),
    ("商贸", "批发和零售业", (2, 30)), ("建筑工程", "建筑业", (10, 300)), ("装饰工程", "建筑业", (5, 80)),
    ("餐饮管理", "住宿和餐饮业", (5, 120)), ("商务咨询", "租赁和商务服务业", (2, 20)),
    ("人力资源", "租赁和商务服务业", (5, 60)), ("医药科技", "科学研究和技术服务业", (5, 100)),
    ("文化传播", "文化、体育和娱乐业", (2, 30)), ("教育科技", "教育", (5, 60)),
    ("汽车服务", "居民服务、修理和其他服务业", (3, 40)), ("家政服务", "居民服务、修理和其他服务业", (5, 150)),
)

SHOP_TRADES: tuple[tuple[str, str], ...] = (
    ("便利店", "批发和零售业"), ("水果店", "批发和零售业"), ("面馆", "住宿和餐饮业"),
    ("生煎馆", "住宿和餐饮业"), ("馄饨店", "住宿和餐饮业"), ("点心店", "住宿和餐饮业"),
    ("理发店", "居民服务、修理和其他服务业"), ("大药房", "批发和零售业"), ("五金店", "批发和零售业"),
    ("烟杂店", "批发和零售业"), ("干洗店", "居民服务、修理和其他服务业"), ("眼镜店", "批发和零售业"),
    ("手机维修", "居民服务、修理和其他服务业"), ("房产中介", "房地产业"), ("快递驿站", "交通运输、仓储和邮政业"),
    ("花店", "批发和零售业"), ("烘焙坊", "住宿和餐饮业"), ("小吃店", "住宿和餐饮业"), ("茶叶店", "批发和零售业"),
    ("服装店", "批发和零售业"), ("电动车维修", "居民服务、修理和其他服务业"), ("菜店", "批发和零售业"),
    ("熟食店", "批发和零售业"), ("粮油店", "批发和零售业"), ("洗衣店", "居民服务、修理和其他服务业"),
)
SHOP_CHAINS: tuple[tuple[str, str], ...] = (
    ("好德便利", "批发和零售业"), ("联华快客", "批发和零售业"), ("全家便利店", "批发和零售业"),
    ("老百姓大药房", "批发和零售业"), ("益丰大药房", "批发和零售业"), ("光明邨", "住宿和餐饮业"),
    ("德佑房产", "房地产业"), ("中国福利彩票", "文化、体育和娱乐业"),
)

PROPERTY_COMPANY_NAMES: tuple[str, ...] = (
    "上海闵行房产物业管理有限公司", "上海江川物业管理有限公司", "上海闵电物业管理有限公司",
    "上海汽轮物业服务有限公司", "上海申闵物业管理有限公司", "上海鹤庆物业管理有限公司",
    "上海红旗物业服务有限公司", "上海东方城市物业有限公司", "上海古北物业管理有限公司",
    "上海陆家嘴物业管理有限公司", "上海万科物业服务有限公司", "上海永升物业管理有限公司",
    "上海明华物业管理有限公司", "上海浦江物业服务有限公司", "上海紫藤物业管理有限公司",
    "上海瑞兰物业管理有限公司", "上海华江物业服务有限公司", "上海沧源物业管理有限公司",
    "上海昆阳物业管理有限公司", "上海新闵物业管理有限公司", "上海百瑞物业管理有限公司",
    "上海东湖物业管理有限公司", "上海锦江物业服务有限公司", "上海绿城物业服务有限公司",
)


def enterprise_name(rng: random.Random, used: set[str]) -> tuple[str, str, tuple[int, int]]:
    """A company name 上海<字号><行业>有限公司 unique in ``used``, its industry and size range."""
    while True:
        brand = "".join(rng.sample(BRAND_CHARS, 2))
        word, industry, size = rng.choice(ENTERPRISE_TRADES)
        form = "有限公司" if rng.random() < 0.9 else "股份有限公司"
        name = f"上海{brand}{word}{form}"
        if name not in used:
            used.add(name)
            return name, industry, size


def shop_name(rng: random.Random, road: str, number: int, used: set[str]) -> tuple[str, str, bool]:
    """A shop sign (e.g. 王记馄饨店, 好德便利（江川路店）), its industry and whether a chain."""
    if rng.random() < 0.18:
        chain, industry = rng.choice(SHOP_CHAINS)
        name = f"{chain}（{road.removesuffix('路')}{number}号店）"
        used.add(name)
        return name, industry, True
    trade, industry = rng.choice(SHOP_TRADES)
    style = rng.random()
    if style < 0.35:
        name = f"{SHANGHAI_SURNAME(rng)}记{trade}"
    elif style < 0.6:
        name = f"{road.removesuffix('路')}{trade}"
    elif style < 0.8:
        name = f"{''.join(rng.sample(BRAND_CHARS, 2))}{trade}"
    else:
        name = f"阿{rng.choice('英芳珍明华强根宝弟妹')}{trade}"
    if name in used:
        name = f"{name}（{road}{number}号）"
    used.add(name)
    return name, industry, False
