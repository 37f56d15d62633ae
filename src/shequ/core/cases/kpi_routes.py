"""Routes of the indicators (KPIs): the API and the page, with XLSX export."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shequ.web.security import csrf_protect

api = APIRouter(tags=["kpi"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
