"""S09's pure data: the GB 3096-2008 limits by area class, the tenant settings and their defaults."""

from __future__ import annotations

from typing import Any

# GB 3096-2008 table 1: LAeq limits in dB(A), (day 06:00–22:00, night 22:00–06:00)
LIMITS: dict[str, tuple[float, float]] = {
    "0": (50.0, 40.0),  # 康复疗养区 convalescent areas
    "1": (55.0, 45.0),  # 居住、文教 residential, cultural, education
    "2": (60.0, 50.0),  # 居住商业混杂 mixed residential and commercial
    "3": (65.0, 55.0),  # 工业、仓储 industrial
    "4a": (70.0, 55.0),  # 交通干线两侧 both sides of main roads
    "4b": (70.0, 60.0),  # 铁路干线两侧 both sides of railways
}
CLASSES = tuple(LIMITS)
CLASS_NAMES: dict[str, tuple[str, str]] = {
    "0": ("0类 康复疗养区", "Class 0 convalescent"),
    "1": ("1类 居住文教区", "Class 1 residential"),
    "2": ("2类 混合区", "Class 2 mixed"),
    "3": ("3类 工业区", "Class 3 industrial"),
    "4a": ("4a类 交通干线两侧", "Class 4a main roads"),
    "4b": ("4b类 铁路干线两侧", "Class 4b railways"),
}
DAY_START_H, NIGHT_START_H = 6, 22  # Asia/Shanghai
NIGHT_BURST_DB = 15.0  # GB 3096 5.3: a sudden night noise may exceed the limit by at most 15 dB(A)

# Road buffers (GB/T 15190-2014 8.3): the 4a band reaches this far beyond the road's edge,
# by the class of the area behind it; the seed adds half the road's width (distance from the centre line).
BUFFER_BY_NEIGHBOUR_M = {"1": 50.0, "2": 35.0, "3": 20.0}

# tenant.settings["s09"]: each key may be overridden per tenant
DEFAULT_SETTINGS: dict[str, Any] = {
    "default_class": "2",  # the class of a point no zone covers
    "window_min": 10,  # the energy-mean window of the over-limit alarm
    "min_minutes": None,  # minutes of data the window needs before it is judged (None: half the window)
    "night_burst_db": NIGHT_BURST_DB,
    "case_after": 3,  # night bursts counted on one alarm before a case (噪声扰民) is opened; 0: never
    "complaint_classes": ["E0503"],  # case classes of residents' noise complaints
    "complaint_radius_m": 300,  # complaints this close to a monitor's positions are shown beside it
}

ALARM_WINDOW = "noise_over_limit"  # 噪声持续超标 (MINOR)
ALARM_NIGHT = "noise_night_burst"  # 夜间突发噪声 (MAJOR)
CASE_CLASS = "E0503"  # 噪声扰民 in the kernel's catalogue
