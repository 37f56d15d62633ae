"""Who may do what with a case, and the case operations of a signed-in user: reporting (the
source follows the role, staff bound to areas report within them), taking an action (department
staff only on their department's cases), attaching a file. Raises ``CaseError`` (422, naming the
field) and ``CaseForbidden`` (403)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import attachments as files
from shequ.core.cases import service
from shequ.core.cases.models import Case, CaseAttachment
from shequ.core.cases.schemas import CaseActionIn, CaseReportIn
from shequ.core.cases.service import ACTIONS, CaseError
from shequ.core.iam import service as iam
from shequ.core.iam.models import Role, User
from shequ.core.iam.scope import AREAS, Scope
from shequ.core.places.models import Place
from shequ.core.places.service import locate
from shequ.core.registry.validators import validate_phone


class CaseForbidden(Exception):
    """The user may not do this (to this case)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


DISPATCH_ACTIONS = frozenset({"register", "void", "dispatch", "rework", "close", "extend", "suspend",
                              "resume", "supervise", "co_handle", "assign", "escalate"})
HANDLE_ACTIONS = frozenset({"handle", "feed_back"})
ROLE_SOURCES: dict[str, str] = {Role.DEPARTMENT: "department", Role.RESIDENT: "resident"}


def user_department(user: User) -> str | None:
    """The department of a department user (``user.scope["department"]``); None for others."""
    if user.role != Role.DEPARTMENT:
        return None
    value = (user.scope or {}).get("department")
    return value if isinstance(value, str) and value else ""


def _own_department(user: User, case: Case) -> bool:
    dept = user_department(user)
    return dept is None or (bool(dept) and (case.department == dept or dept in (case.co_departments or [])))


def permitted(user: User, case: Case, action: str) -> bool:
    """Whether the user's permissions (and, for department staff, the case's departments) allow
    the action; the stage is checked separately."""
    if action in DISPATCH_ACTIONS:
        return iam.can(user, iam.CASE_DISPATCH)
    if action in HANDLE_ACTIONS:
        return iam.can(user, iam.CASE_HANDLE) and _own_department(user, case)
    if action == "verify":
        return iam.can(user, iam.CASE_VERIFY)
    if action == "evaluate":
        return iam.can(user, iam.CASE_DISPATCH) or (case.reporter_user_id is not None
                                                   and case.reporter_user_id == user.id)
    if action == "comment":
        return any(iam.can(user, p) for p in (iam.CASE_HANDLE, iam.CASE_DISPATCH, iam.CASE_VERIFY))
    return False


def user_actions(user: User, case: Case) -> list[str]:
    """The actions the stage allows and the user may take."""
    return [a for a in service.allowed_actions(case) if permitted(user, case, a)]


def may_attach(user: User, case: Case) -> bool:
    return (any(iam.can(user, p) for p in (iam.CASE_HANDLE, iam.CASE_DISPATCH, iam.CASE_VERIFY))
            or (case.reporter_user_id is not None and case.reporter_user_id == user.id))


def default_source(user: User) -> str:
    return ROLE_SOURCES.get(user.role, "patrol")


def report_case(*, session: Session, user: User, body: CaseReportIn) -> Case:
    """Open a case for a user's report: the source follows the role unless a dispatcher chooses;
    staff bound to areas report within them."""
    may_dispatch = iam.can(user, iam.CASE_DISPATCH)
    source = default_source(user)
    if body.source is not None and body.source != source:
        if not may_dispatch:
            raise CaseError("source", f"只有调度员可以指定来源，您的上报来源是 {source}（only a dispatcher chooses the source）")
        source = body.source
    if body.dispatch and not may_dispatch:
        raise CaseForbidden("dispatch")
    phone = None
    if body.reporter_phone:
        try:
            phone = validate_phone(body.reporter_phone)
        except ValueError as exc:
            raise CaseError("reporter_phone", str(exc)) from None
    if not iam.can(user, iam.CASE_READ):  # residents: the classes offered to the public only
        klass = service.get_class(session=session, code=body.class_code)
        if klass is not None and not klass.public:
            raise CaseError("class_code", f"{body.class_code!r} 不对公众开放（not offered to residents）")
    if (body.lon is None) != (body.lat is None):
        raise CaseError("lat" if body.lat is None else "lon", "经纬度须同时给出（give both lon and lat）")
    place_id = body.place_id
    area: dict[str, int | None] = {}
    if place_id is not None:
        place = session.scalar(select(Place).where(Place.id == place_id))
        if place is None:
            raise CaseError("place_id", f"地点 {place_id} 不存在（unknown place）")
        area = place.ancestry()
    elif body.lon is not None and body.lat is not None:
        found = locate(session=session, lon=body.lon, lat=body.lat)
        place_id = found.compound_id or found.committee_id or found.grid_id
        area = {"grid_id": found.grid_id, "committee_id": found.committee_id, "compound_id": found.compound_id}
    scope = session.info.get("scope")
    if isinstance(scope, Scope) and scope.kind == AREAS and not scope.covers_area(
            grid_id=area.get("grid_id"), committee_id=area.get("committee_id"), compound_id=area.get("compound_id")):
        raise CaseError("place_id", "位置不在您的管辖范围内（the place is outside your areas）")
    return service.open_case(session=session, title=body.title, class_code=body.class_code, source=source,
                             actor=user.username, description=body.description, place_id=place_id,
                             lon=body.lon, lat=body.lat, address_text=body.address_text, priority=body.priority,
                             reporter_name=body.reporter_name or user.display_name or user.username,
                             reporter_phone=phone, reporter_user_id=user.id, dispatch=body.dispatch)


def take_action(*, session: Session, user: User, case: Case, action: str, body: CaseActionIn) -> Case:
    """One action by a user: 422 (CaseError) for what the stage or values do not allow, 403 for
    what the user may not do."""
    if action not in ACTIONS:
        raise CaseError("action", f"{action[:30]!r} 不是工单操作，可用：{', '.join(ACTIONS)}（not an action）")
    if not permitted(user, case, action):
        if action in HANDLE_ACTIONS and iam.can(user, iam.CASE_HANDLE):
            raise CaseForbidden(f"{action}: 该工单不属于您的部门 (the case is not your department's)")
        raise CaseForbidden(action)
    if body.assignee_id is not None and session.scalar(select(User.id).where(User.id == body.assignee_id)) is None:
        raise CaseError("assignee_id", f"用户 {body.assignee_id} 不存在（unknown user）")
    return service.act(session=session, case=case, action=action, actor=user.username, note=body.note,
                       department=body.department, departments=body.departments, hours=body.hours,
                       satisfaction=body.satisfaction, assignee_id=body.assignee_id)


def attach(*, session: Session, user: User, case: Case, name: str, data: bytes, note: str = "") -> CaseAttachment:
    """Keep a file with a case; with a note, the note goes to the timeline as a comment that
    the attachment points to."""
    if not may_attach(user, case):
        raise CaseForbidden("attach")
    if "\x00" in note:
        raise CaseError("note", "不能包含 NUL 字符（must not contain a NUL character）")
    row = files.add_attachment(session=session, case=case, name=name, data=data, uploaded_by=user.username)
    if note.strip():
        service.act(session=session, case=case, action="comment", actor=user.username, note=note[:2000],
                    data={"attachment_id": row.id, "attachment": row.name})
        row.step_id = service.timeline(session=session, case_id=case.id)[-1].id
        session.flush()
    return row
