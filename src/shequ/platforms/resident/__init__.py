"""居民端: mobile web pages of a resident: report a problem, follow my requests, rate the
result, read notices; a large-font mode for older residents (适老化). See docs/platforms.md."""

from pathlib import Path

from shequ.core.iam import service as iam
from shequ.core.plugins import NavEntry

NAV = (
    NavEntry("我要报事", "/m/report", "resident", "Report", iam.CASE_REPORT),
    NavEntry("我的诉求", "/m/requests", "resident", "My requests", iam.CASE_REPORT),
    NavEntry("通知", "/m/notices", "resident", "Notices"),
)
TEMPLATES = Path(__file__).parent / "templates"
