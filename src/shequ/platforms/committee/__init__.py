"""居委微平台: mobile-first pages of a residents' committee: today's to-dos, the ledgers of its
neighbourhood with XLSX export, residents' requests to answer, notices. See docs/platforms.md."""

from pathlib import Path

from shequ.core.iam import service as iam
from shequ.core.plugins import NavEntry

NAV = (NavEntry("居委微平台", "/committee", "committee", "Committee", iam.CASE_READ),)
TEMPLATES = Path(__file__).parent / "templates"
