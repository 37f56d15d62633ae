"""Scopes: which records of its tenant a user may see, applied at the data layer.

A :class:`Scope` is bound to a session (``bind_context(session, ..., scope=...)``); from then on
every ORM SELECT, UPDATE and DELETE of that session carries extra ``with_loader_criteria`` (see
``shequ.db._limit_to_tenant``): a record outside the scope is simply not there, so routes answer
404 and lists, counts, search, exports and reports leave it out without knowing about scopes.

Kinds of scope:

- ``tenant``: the whole subdistrict (no extra criteria);
- ``areas``: grids, committees and compounds — placed records whose grid/committee/compound is
  one of them; places in their subtrees plus the ancestors of the areas (so the name of a
  committee's grid still shows); an unplaced record is visible with whole-tenant scope only;
- ``person``: a resident — their own person row, their household and its members, their house
  and the places above their room; nothing else;
- ``nothing``: no registry record at all (devices, API clients without a scope, anonymous).

Records that describe other records (tags on them, source facts, change log, memberships) are
limited to the records in scope through subqueries of the scoped tables. Raw reads through
``session.connection()`` bypass the ORM and therefore the scope: request paths must not use
them (the tag rule engine does, on purpose: a rule is computed over the whole tenant).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, false, or_, select
from sqlalchemy.orm import with_loader_criteria

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from shequ.core.iam.models import User

TENANT = "tenant"
AREAS = "areas"
PERSON = "person"
NOTHING = "nothing"

# roles that see the whole subdistrict's registry
WHOLE_TENANT_ROLES = frozenset({"admin", "leader", "dispatcher", "department"})


@dataclass(frozen=True)
class Scope:
    """What one user may see of their tenant. Build with the class methods or :func:`scope_of`."""

    kind: str
    grids: frozenset[int] = frozenset()
    committees: frozenset[int] = frozenset()
    compounds: frozenset[int] = frozenset()
    # places above the areas (a committee's grid), shown so that names resolve
    ancestors: frozenset[int] = frozenset()
    # resident scope
    person_id: int | None = None
    household_id: int | None = None
    house_ids: frozenset[int] = frozenset()
    place_ids: frozenset[int] = frozenset()
    label: str = field(default="", compare=False)

    @classmethod
    def tenant(cls) -> Scope:
        return cls(TENANT)

    @classmethod
    def nothing(cls) -> Scope:
        return cls(NOTHING)

    @classmethod
    def areas(cls, *, grids: Any = (), committees: Any = (), compounds: Any = (),
              ancestors: Any = ()) -> Scope:
        return cls(AREAS, grids=frozenset(grids), committees=frozenset(committees),
                   compounds=frozenset(compounds), ancestors=frozenset(ancestors))

    @property
    def whole_tenant(self) -> bool:
        return self.kind == TENANT

    @property
    def area_ids(self) -> frozenset[int]:
        return self.grids | self.committees | self.compounds

    def loader_options(self) -> tuple[Any, ...]:
        """The ``with_loader_criteria`` options that limit a statement to this scope."""
        return _options_for(self)

    # --- checks on single values (for code that holds ids, not rows) ----------------------

    def covers_area(self, *, grid_id: int | None, committee_id: int | None,
                    compound_id: int | None) -> bool:
        """Whether a record placed with these ancestry ids is in scope (areas and tenant only)."""
        if self.kind == TENANT:
            return True
        if self.kind != AREAS:
            return False
        return (grid_id in self.grids or committee_id in self.committees
                or compound_id in self.compounds)


# --- the criteria --------------------------------------------------------------------------


def _placed_models() -> list[type[Any]]:
    """Every mapped model with a place (the kernel's and any scenario's): derived from the
    mappers, never a hand-kept list, so a scenario's placed records are scoped too."""
    from shequ.db import Base, Placed

    return sorted((m.class_ for m in Base.registry.mappers if issubclass(m.class_, Placed)),
                  key=lambda cls: cls.__name__)


def _in(column: Any, ids: frozenset[int]) -> Any:
    return column.in_(sorted(ids))


def _area_clause(scope: Scope, columns: Any) -> Any:
    """``grid_id IN … OR committee_id IN … OR compound_id IN …`` on a table's columns."""
    parts = []
    if scope.grids:
        parts.append(_in(columns.grid_id, scope.grids))
    if scope.committees:
        parts.append(_in(columns.committee_id, scope.committees))
    if scope.compounds:
        parts.append(_in(columns.compound_id, scope.compounds))
    return or_(*parts) if parts else false()


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _visible(scope: Scope, model: type[Any]) -> Any:
    """The condition on a scoped model's table columns (Core, so it nests in subqueries)."""
    from shequ.core.places.models import Place
    from shequ.core.registry.models import House, Household, Person

    c = _table(model).c
    if scope.kind == AREAS:
        if model is Place:
            return or_(_in(c.id, scope.area_ids | scope.ancestors), _area_clause(scope, c))
        return _area_clause(scope, c)
    if scope.kind == PERSON:
        if model is Person:
            mine = c.id == scope.person_id
            return or_(mine, c.household_id == scope.household_id) if scope.household_id else mine
        if model is Household:
            return c.id == scope.household_id if scope.household_id else false()
        if model is House:
            return _in(c.id, scope.house_ids) if scope.house_ids else false()
        if model is Place:
            return _in(c.id, scope.place_ids) if scope.place_ids else false()
        return false()
    return false()


def _ids_of(scope: Scope, model: type[Any]) -> Any:
    table = _table(model)
    return select(table.c.id).where(_visible(scope, model))


def _entity_clause(scope: Scope, entity_col: Any, id_col: Any, *, free: tuple[str, ...] = ()) -> Any:
    """Rows about another record (``entity``, ``entity_id``): only about records in scope."""
    from shequ.core.places.models import Place

    models: list[type[Any]] = [*_placed_models(), Place]
    parts = [and_(entity_col == _table(m).name, id_col.in_(_ids_of(scope, m))) for m in models]
    parts += [entity_col == name for name in free]
    return or_(*parts)


@functools.lru_cache(maxsize=512)
def _options_for(scope: Scope) -> tuple[Any, ...]:
    """Built once per distinct scope in a process, not once per request: a scope's options name
    every placed model (the kernel's and the scenarios'), and building them cost a scoped user's
    request more than its own queries did."""
    return tuple(_loader_options(scope))


def _loader_options(scope: Scope) -> list[Any]:
    if scope.kind == TENANT:
        return []
    from shequ.core.changelog import ChangeLog
    from shequ.core.places.models import Place
    from shequ.core.registry.models import Membership, Organisation, Person, SourceFact, Tagging

    opts = []
    models: list[type[Any]] = [*_placed_models(), Place]
    for model in models:
        opts.append(with_loader_criteria(model, _visible(scope, model), include_aliases=True))
    if scope.kind == NOTHING:
        deny = false()
        for model in (Tagging, SourceFact, ChangeLog, Membership):
            opts.append(with_loader_criteria(model, deny, include_aliases=True))
        return opts
    tagging, fact, log, member = (_table(m).c for m in (Tagging, SourceFact, ChangeLog, Membership))
    opts.append(with_loader_criteria(Tagging, _entity_clause(scope, tagging.entity, tagging.entity_id),
                                     include_aliases=True))
    opts.append(with_loader_criteria(SourceFact, _entity_clause(scope, fact.entity, fact.entity_id),
                                     include_aliases=True))
    # a membership shows only when both the person and the organisation are in scope
    member_visible = and_(member.person_id.in_(_ids_of(scope, Person)),
                          member.organisation_id.in_(_ids_of(scope, Organisation)))
    opts.append(with_loader_criteria(Membership, member_visible, include_aliases=True))
    # the change log: of records in scope, of memberships in scope, and of the tag taxonomy
    member_ids = select(member.id).where(member_visible)
    log_visible = or_(_entity_clause(scope, log.entity, log.entity_id, free=("tag",)),
                      and_(log.entity == "membership", log.entity_id.in_(member_ids)))
    opts.append(with_loader_criteria(ChangeLog, log_visible, include_aliases=True))
    return opts


# --- from a user to a scope ----------------------------------------------------------------


def _ints(values: Any) -> list[int]:
    out = []
    for v in values or []:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


def scope_of(*, session: Session, user: User | None) -> Scope:
    """The scope of a signed-in user (read with the session before any scope is bound to it).

    admin, leader, dispatcher and department staff: the whole tenant (a department's limits
    come with its scenarios); grid workers, committee and property staff: their areas;
    residents: their person; devices: nothing; API clients: what their ``scope`` record says
    (``{"tenant": true}`` or areas), nothing by default. An inactive user: nothing.
    """
    from shequ.core.iam.models import Role

    if user is None or not user.active:
        return Scope.nothing()
    bound = user.scope or {}
    role = user.role
    if role in WHOLE_TENANT_ROLES:
        return Scope.tenant()
    if role == Role.RESIDENT:
        return _resident_scope(session, bound.get("person_id"))
    if role == Role.DEVICE:
        return Scope.nothing()
    grids = _ints(bound.get("grids")) if role in (Role.GRID_WORKER, Role.API_CLIENT) else []
    committees = _ints(bound.get("committees")) if role in (Role.COMMITTEE, Role.API_CLIENT) else []
    compounds = _ints(bound.get("compounds")) if role in (Role.PROPERTY, Role.API_CLIENT) else []
    if role == Role.API_CLIENT and bound.get("tenant") is True:
        return Scope.tenant()
    if not (grids or committees or compounds):
        return Scope.nothing()
    return Scope.areas(grids=grids, committees=committees, compounds=compounds,
                       ancestors=_ancestors(session, [*grids, *committees, *compounds]))


def _ancestors(session: Session, area_ids: list[int]) -> set[int]:
    from shequ.core.places.models import Place

    out: set[int] = set()
    rows = session.execute(select(Place.grid_id, Place.committee_id, Place.compound_id,
                                  Place.building_id).where(Place.id.in_(area_ids)),
                           execution_options={"all_scopes": True})
    for row in rows:
        out |= {v for v in row if v is not None}
    return out


def _resident_scope(session: Session, person_id: Any) -> Scope:
    from shequ.core.places.models import Place
    from shequ.core.registry.models import Household, Person

    if not isinstance(person_id, int):
        return Scope.nothing()
    unscoped = {"all_scopes": True}
    row = session.execute(select(Person.id, Person.household_id, Person.house_id, Person.place_id)
                          .where(Person.id == person_id), execution_options=unscoped).first()
    if row is None:
        return Scope.nothing()
    _, household_id, house_id, place_id = row
    houses = {house_id} if house_id else set()
    if household_id:
        hh = session.execute(select(Household.house_id, Household.place_id)
                             .where(Household.id == household_id), execution_options=unscoped).first()
        if hh is not None:
            houses |= {hh[0]} if hh[0] else set()
            place_id = place_id or hh[1]
    places: set[int] = set()
    while place_id is not None and place_id not in places:
        places.add(place_id)
        place_id = session.scalar(select(Place.parent_id).where(Place.id == place_id),
                                  execution_options=unscoped)
    return Scope(PERSON, person_id=person_id, household_id=household_id,
                 house_ids=frozenset(houses), place_ids=frozenset(places))
