"""地 places: tenant (subdistrict) › grid › committee area › compound › building › unit › floor › room,
plus streets, shops along streets and other places."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shequ.db import Base, ChangeLogged, TenantScoped, Timestamped, utcnow


class Tenant(Base):
    """A subdistrict (街道) served by this deployment; the partition key of all data."""

    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)  # division code, e.g. 310112001
    name: Mapped[str] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(50), default="")
    city: Mapped[str] = mapped_column(String(50), default="")
    centre_lon: Mapped[float | None] = mapped_column(Float)
    centre_lat: Mapped[float | None] = mapped_column(Float)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlaceKind(StrEnum):
    GRID = "grid"
    COMMITTEE = "committee"
    COMPOUND = "compound"
    BUILDING = "building"
    UNIT = "unit"
    FLOOR = "floor"
    ROOM = "room"
    STREET = "street"
    SHOP = "shop"
    OTHER = "other"


# The tree: which kind may sit under which.
PARENT_KINDS: dict[PlaceKind, tuple[PlaceKind | None, ...]] = {
    PlaceKind.GRID: (None,),
    PlaceKind.COMMITTEE: (PlaceKind.GRID,),
    PlaceKind.COMPOUND: (PlaceKind.COMMITTEE,),
    PlaceKind.BUILDING: (PlaceKind.COMPOUND, PlaceKind.COMMITTEE),
    PlaceKind.UNIT: (PlaceKind.BUILDING,),
    PlaceKind.FLOOR: (PlaceKind.UNIT, PlaceKind.BUILDING),
    PlaceKind.ROOM: (PlaceKind.FLOOR,),
    PlaceKind.STREET: (None,),
    PlaceKind.SHOP: (PlaceKind.STREET, PlaceKind.COMMITTEE, PlaceKind.BUILDING, PlaceKind.FLOOR),
    PlaceKind.OTHER: (None, PlaceKind.GRID, PlaceKind.COMMITTEE, PlaceKind.COMPOUND),
}


class Place(Base, TenantScoped, Timestamped, ChangeLogged):
    """One node of the place tree. Geometry is GeoJSON in WGS84 (lon, lat).

    Ancestor ids (grid, committee, compound, building) are kept on the row, filled from the
    parent when the place is created, so that any record placed here inherits them.
    """

    __tablename__ = "place"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "code", name="uq_place_code"),
        Index("ix_place_tenant_kind", "tenant_id", "kind"),
        Index("ix_place_address_text", "tenant_id", "address_text"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("place.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    grid_id: Mapped[int | None] = mapped_column(Integer, index=True)
    committee_id: Mapped[int | None] = mapped_column(Integer, index=True)
    compound_id: Mapped[int | None] = mapped_column(Integer, index=True)
    building_id: Mapped[int | None] = mapped_column(Integer, index=True)
    geometry: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    # 标准地址: structured parts (road, lane 弄, number 号, unit, room, compound) and display text
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    address_text: Mapped[str] = mapped_column(String(300), default="")
    floors: Mapped[int | None] = mapped_column(Integer)  # buildings: storeys above ground
    floor_no: Mapped[int | None] = mapped_column(Integer)  # floors and rooms: which storey
    height_m: Mapped[float | None] = mapped_column(Float)
    use: Mapped[str | None] = mapped_column(String(30))  # residential, commercial, mixed, public…
    built_year: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def ancestry(self) -> dict[str, int | None]:
        """The ancestor ids a record placed here inherits (including this place itself)."""
        own = {
            PlaceKind.GRID: "grid_id",
            PlaceKind.COMMITTEE: "committee_id",
            PlaceKind.COMPOUND: "compound_id",
            PlaceKind.BUILDING: "building_id",
        }
        out = {
            "grid_id": self.grid_id,
            "committee_id": self.committee_id,
            "compound_id": self.compound_id,
            "building_id": self.building_id,
        }
        key = own.get(PlaceKind(self.kind))
        if key:
            out[key] = self.id
        return out
