"""Possible duplicates of a report: open cases of the same class reported nearby a short while
ago (after FixMyStreet's practice: about 50 m and a few days)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases.models import OPEN_STAGES, Case

RADIUS_M = 50.0
DAYS = 3.0
EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Candidate:
    case: Case
    distance_m: float


def find_duplicates(*, session: Session, class_code: str, lon: float, lat: float,
                    now: dt.datetime | None = None, radius_m: float = RADIUS_M, days: float = DAYS,
                    public_only: bool = False, exclude_id: int | None = None,
                    all_scopes: bool = False) -> list[Candidate]:
    """Open cases of ``class_code`` within ``radius_m`` of (lon, lat) reported in the ``days``
    before ``now``, nearest first. The database narrows by a bounding box; haversine decides.

    ``public_only`` keeps the cases published through Open311; ``all_scopes`` looks past the
    session's scope (the public Open311 door serves the whole subdistrict)."""
    now = now or dt.datetime.now(dt.UTC)
    dlat = radius_m / METRES_PER_DEGREE
    dlon = radius_m / (METRES_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
    stmt = select(Case).where(
        Case.class_code == class_code, Case.stage.in_(OPEN_STAGES),
        Case.reported_at >= now - dt.timedelta(days=days), Case.reported_at <= now,
        Case.lon.between(lon - dlon, lon + dlon), Case.lat.between(lat - dlat, lat + dlat))
    if public_only:
        stmt = stmt.where(Case.public.is_(True))
    if exclude_id is not None:
        stmt = stmt.where(Case.id != exclude_id)
    if all_scopes:
        stmt = stmt.execution_options(all_scopes=True)
    found = []
    for case in session.scalars(stmt.limit(200)):
        assert case.lon is not None and case.lat is not None
        distance = haversine_m(lon, lat, case.lon, case.lat)
        if distance <= radius_m:
            found.append(Candidate(case, distance))
    found.sort(key=lambda c: (c.distance_m, c.case.id))
    return found
