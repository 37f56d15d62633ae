"""网格中台: the case board by stage, dispatch and co-handling, the alarm console, patrol
reporting with a photo and a point on the map, and one search box over the thematic database
(一网一库). See docs/platforms.md."""

from pathlib import Path

from shequ.core.iam import service as iam
from shequ.core.plugins import NavEntry

NAV = (
    NavEntry("网格中台", "/grid", "grid", "Grid board", iam.CASE_READ),
    NavEntry("巡查上报", "/grid/patrol", "grid", "Patrol report", iam.CASE_REPORT),
    NavEntry("一网搜索", "/grid/search", "grid", "Search", iam.READ),
)
TEMPLATES = Path(__file__).parent / "templates"
