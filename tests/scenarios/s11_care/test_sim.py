"""The S11 target on simulated homes: falls are caught, false alarms stay at or below one per home per 50 days."""

from __future__ import annotations

from shequ.scenarios.s11_care.sim import measure


def test_falls_are_caught_and_false_alarms_stay_under_the_target():
    result = measure(homes=20, weeks=4, seed=3)
    assert result.detection_rate >= 0.95
    assert result.median_minutes <= 16 * 60  # six daytime hours, or the next morning
    assert result.false_per_home_50d <= 1.0
