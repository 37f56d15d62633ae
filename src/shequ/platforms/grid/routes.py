"""Pages of this level (being built)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from shequ.web.security import csrf_protect

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
