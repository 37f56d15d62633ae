"""Residents' requests through Open311 GeoReport v2, mapped onto cases."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["open311"])
