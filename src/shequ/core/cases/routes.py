"""Routes of the cases package: the API (under /api/v1) and the pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shequ.web.security import csrf_protect

api = APIRouter(tags=["cases"])
pages = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
