"""Routes of the audit log: search it (GET /api/v1/audit) and the page /audit.

Read only: no route changes or deletes an audit row. Needs the permission ``audit.read``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from shequ.config import get_settings
from shequ.core.iam import audit
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.paging import Page
from shequ.web.deps import SessionDep, render, require
from shequ.web.records import BadParam

api = APIRouter(tags=["audit"])
pages = APIRouter(include_in_schema=False)

ApiAuditor = Annotated[User, Depends(require(iam.AUDIT_READ, api=True))]
PageAuditor = Annotated[User, Depends(require(iam.AUDIT_READ, api=False))]
SHANGHAI = ZoneInfo("Asia/Shanghai")


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    purpose: str
    ip: str
    detail: dict[str, Any]


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    size: int
    pages: int


def _search(session: Any, query: audit.AuditQuery) -> Page:
    try:
        return audit.search(session=session, query=query)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise BadParam(field, message) from None


@api.get("/audit", response_model=AuditPageOut, summary="Search the audit log (newest first)",
         description="Who did what, when, from where, and why (unmasking). Filters: actor (exact), "
                     "action (exact: login, login_failed, export, unmask, import, create, update, "
                     "delete…), target (contained text), ip (exact), from/to (ISO 8601 with a time "
                     "zone; from inclusive, to exclusive).")
def search_audit(
    session: SessionDep, user: ApiAuditor,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    ip: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[dt.datetime | None, Query(alias="from", description="e.g. 2024-05-01T00:00:00+08:00")] = None,
    until: Annotated[dt.datetime | None, Query(alias="to")] = None,
    page: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    size = min(size, get_settings().page_size_max)
    result = _search(session, audit.AuditQuery(actor=actor, action=action, target=target, ip=ip,
                                                since=since, until=until, page=page, size=size))
    return AuditPageOut(items=[AuditEntryOut.model_validate(row, from_attributes=True)
                               for row in result.items],
                        total=result.total, page=result.page, size=result.size, pages=result.pages)


# --- page --------------------------------------------------------------------------------


def _local_time(field: str, raw: str | None) -> dt.datetime | None:
    """A time typed on the page: ISO with a zone, or a local (Asia/Shanghai) date and time."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadParam(field, f"时间格式应为 2024-05-01T08:00，收到 {raw!r}（invalid time）") from None
    return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or 1)
    except ValueError:
        raise BadParam("page", f"应为整数，收到 {raw!r}（must be an integer）") from None
    return number


@pages.get("/audit")
def audit_page(request: Request, session: SessionDep, user: PageAuditor) -> Response:
    q = request.query_params
    filters = {key: (q.get(key) or "").strip()[:200] for key in ("actor", "action", "target", "ip", "from", "to")}
    error = ""
    try:
        query = audit.AuditQuery(
            actor=filters["actor"] or None, action=filters["action"] or None,
            target=filters["target"] or None, ip=filters["ip"] or None,
            since=_local_time("from", filters["from"]), until=_local_time("to", filters["to"]),
            page=_page_number(q.get("page")), size=50)
        result = _search(session, query)
    except BadParam as exc:
        error = str(exc)
        result = audit.search(session=session, query=audit.AuditQuery())
    kept = [(k, v) for k, v in filters.items() if v]
    return render(request, "audit/list.html", page=result, filters=filters, error=error,
                  actions=audit.actions(session=session),
                  page_url=lambda n: "/audit?" + urlencode([*kept, ("page", str(n))]))
