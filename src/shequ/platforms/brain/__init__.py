"""社区大脑: the subdistrict's big screen (1920×1080, dark): the 3D twin, the counters and charts,
drill-down, replay and command actions. See docs/platforms.md."""

from pathlib import Path

from shequ.core.iam import service as iam
from shequ.core.plugins import NavEntry

NAV = (NavEntry("社区大脑", "/brain", "brain", "Community brain", iam.ALARM_READ),)
TEMPLATES = Path(__file__).parent / "templates"
