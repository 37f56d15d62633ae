"""Notices (通知公告): broadcast from the brain (the whole subdistrict) or by a committee (its
own neighbourhood), to staff, residents or both; every recipient gets an in-app notification.

Who receives a notice:
- staff: every active staff user whose scope covers the notice's committee (whole-tenant roles
  always; committee users of that committee; grid workers whose grid holds it; property staff
  whose compound lies in it); for a subdistrict notice, every active staff user;
- residents: every active resident account whose person lives in the committee (or anywhere,
  for a subdistrict notice).

A committee user may publish only to their own committee; publishing needs ``notice.publish``
(checked by the routes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shequ.core.errors import FieldError
from shequ.core.iam.models import Role, User
from shequ.core.iam.scope import WHOLE_TENANT_ROLES
from shequ.core.notify.models import Notice
from shequ.core.notify.service import Message, notify
from shequ.core.places.models import Place, PlaceKind
from shequ.db import utcnow

AUDIENCES = ("all", "staff", "residents")
UNSCOPED = {"all_scopes": True}


class NoticeError(FieldError):
    """A notice refused; names the field."""


def _committee_places(session: Session, committee_id: int) -> tuple[int | None, set[int]]:
    """The committee's grid and the compounds within it."""
    grid_id = session.scalar(select(Place.grid_id).where(Place.id == committee_id), execution_options=UNSCOPED)
    compounds = set(session.scalars(select(Place.id).where(Place.committee_id == committee_id,
                                                         Place.kind == PlaceKind.COMPOUND),
                                    execution_options=UNSCOPED))
    return grid_id, compounds


def _ints(values: Any) -> set[int]:
    out = set()
    for v in values or []:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return out


def recipients(*, session: Session, audience: str, committee_id: int | None) -> list[int]:
    """The ids of the users a notice reaches (see the module's docstring)."""
    from shequ.core.registry.models import Person

    users = list(session.scalars(select(User).where(User.active.is_(True)), execution_options=UNSCOPED))
    grid_id, compounds = _committee_places(session, committee_id) if committee_id else (None, set())
    out: list[int] = []
    resident_people: dict[int, int] = {}
    for user in users:
        bound = user.scope or {}
        if user.role == Role.RESIDENT:
            if audience in ("all", "residents") and isinstance(bound.get("person_id"), int):
                resident_people[user.id] = bound["person_id"]
            continue
        if audience == "residents" or user.role in (Role.DEVICE, Role.API_CLIENT):
            continue
        if committee_id is None or user.role in WHOLE_TENANT_ROLES or (committee_id in _ints(bound.get("committees"))
              or (grid_id is not None and grid_id in _ints(bound.get("grids")))
              or compounds & _ints(bound.get("compounds"))):
            out.append(user.id)
    if resident_people:
        stmt = select(Person.id).where(Person.id.in_(sorted(set(resident_people.values()))))
        if committee_id is not None:
            stmt = stmt.where(Person.committee_id == committee_id)
        living = set(session.scalars(stmt, execution_options=UNSCOPED))
        out += [uid for uid, pid in resident_people.items() if pid in living]
    return sorted(out)


def publish(*, session: Session, user: User, title: str, body: str = "", audience: str = "all",
            committee_id: int | None = None) -> Notice:
    """Broadcast a notice and notify its recipients; audited. NoticeError names a bad field."""
    title = (title or "").strip()
    if not title:
        raise NoticeError("title", "请填写标题（a title is required）")
    if len(title) > 200:
        raise NoticeError("title", "标题不超过 200 字（at most 200 characters）")
    if len(body or "") > 2000:
        raise NoticeError("body", "正文不超过 2000 字（at most 2000 characters）")
    if audience not in AUDIENCES:
        raise NoticeError("audience", f"应为 {' / '.join(AUDIENCES)}（one of these）")
    if user.role not in WHOLE_TENANT_ROLES:
        own = _ints((user.scope or {}).get("committees"))
        if committee_id is None and len(own) == 1:
            committee_id = next(iter(own))
        if committee_id not in own:
            raise NoticeError("committee_id", "只能向本居委发布（only to your own committee）")
    if committee_id is not None:
        kind = session.scalar(select(Place.kind).where(Place.id == committee_id), execution_options=UNSCOPED)
        if kind != PlaceKind.COMMITTEE:
            raise NoticeError("committee_id", f"居委 {committee_id} 不存在（no such committee）")
    notice = Notice(title=title, body=(body or "").strip(), audience=audience, committee_id=committee_id,
                    published_by=user.username, published_at=utcnow())
    session.add(notice)
    session.flush()
    ids = recipients(session=session, audience=audience, committee_id=committee_id)
    notify(session=session, user_ids=ids, message=Message(kind="notice", title=title, body=notice.body[:1000],
                                                          link=f"/notices/{notice.id}", ref=f"notice:{notice.id}",
                                                          resident_link=f"/m/notices/{notice.id}"))
    notice.recipients = len(ids)  # the insert itself is in the audit log (every write is)
    return notice


def visible_to(*, session: Session, user: User, limit: int = 50) -> Sequence[Notice]:
    """The notices a user may read, newest first: whole-tenant roles all of them; others the
    subdistrict's and their own committee's (residents: those addressed to residents)."""
    stmt = select(Notice).order_by(Notice.published_at.desc(), Notice.id.desc()).limit(limit)
    if user.role == Role.RESIDENT:
        stmt = stmt.where(Notice.audience.in_(("all", "residents")))
        committee = session.scalar(_resident_committee(user), execution_options=UNSCOPED)
        return list(session.scalars(stmt.where(or_(Notice.committee_id.is_(None),
                                                   Notice.committee_id == committee))))
    if user.role in WHOLE_TENANT_ROLES:
        return list(session.scalars(stmt))
    stmt = stmt.where(Notice.audience.in_(("all", "staff")))
    mine = _ints((user.scope or {}).get("committees"))
    for key in ("grids", "compounds"):
        ids = _ints((user.scope or {}).get(key))
        if ids:
            column = Place.grid_id if key == "grids" else Place.id
            mine |= {c for c in session.scalars(select(Place.committee_id).where(column.in_(ids)),
                                                execution_options=UNSCOPED) if c}
            if key == "grids":
                mine |= set(session.scalars(select(Place.id).where(Place.grid_id.in_(ids),
                                                                   Place.kind == PlaceKind.COMMITTEE),
                                            execution_options=UNSCOPED))
    return list(session.scalars(stmt.where(or_(Notice.committee_id.is_(None),
                                               Notice.committee_id.in_(sorted(mine))))))


def _resident_committee(user: User) -> Any:
    from shequ.core.registry.models import Person

    return select(Person.committee_id).where(Person.id == (user.scope or {}).get("person_id", -1))


def get_visible(*, session: Session, user: User, notice_id: int) -> Notice | None:
    return next((n for n in visible_to(session=session, user=user, limit=500) if n.id == notice_id), None)
