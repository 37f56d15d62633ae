"""居委微平台 service: which cases wait for the committee (and for whom), the committees a user
works for, the ledgers' parameters and the residents' requests, all within the user's scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iam.scope import scope_of
from shequ.db import bind_context
from shequ.platforms.committee import service
from tests.factories import Tree, place_tree

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai
Binder = Callable[[User], User]


@pytest.fixture
def trees(session: Session) -> tuple[Tree, Tree]:
    return (place_tree(session, tag="A", committee_name="北街居委会"),
            place_tree(session, tag="B", lon=121.45, committee_name="南街居委会", lane="300"))


def _user(session: Session, name: str, role: str, scope: dict) -> User:
    return iam.create_user(session=session, username=name, password="jiangchuan2024", role=role, scope=scope)


@pytest.fixture
def as_user(session: Session) -> Iterator[Binder]:
    """Bind a user's scope to the session as a request does; unbound again after the test."""

    def bind(user: User) -> User:
        bind_context(session, tenant_id=session.info["tenant_id"], actor=user.username,
                     scope=scope_of(session=session, user=user))
        return user

    yield bind
    bind_context(session, tenant_id=session.info["tenant_id"], actor="test", scope=None)


def _case(session: Session, tree: Tree, title: str, *, class_code: str = "E0103", source: str = "patrol",
          until: str | None = "dispatched") -> int:
    case = cases.open_case(session=session, title=title, class_code=class_code, source=source, actor="t",
                           place_id=tree.building.id, now=T0)
    steps = {"registered": ["register"], "dispatched": ["register", "dispatch"],
             "handled": ["register", "dispatch", "handle"],
             "fed_back": ["register", "dispatch", "handle", "feed_back"]}.get(until or "", [])
    for action in steps:
        cases.act(session=session, case=case, action=action, actor="t", now=T0)
    return case.id


def test_cases_waiting_for_the_committee(session: Session, trees: tuple[Tree, Tree], as_user: Binder) -> None:
    a, b = trees
    _case(session, a, "待受理", until=None)
    _case(session, a, "待处置", until="dispatched")
    _case(session, a, "待反馈", until="handled")
    _case(session, a, "待核查", until="fed_back")
    suspended = cases.get_case(session=session, case_id=_case(session, a, "挂账中", until="dispatched"))
    assert suspended is not None
    cases.act(session=session, case=suspended, action="suspend", actor="t", note="等材料", now=T0)
    _case(session, b, "南街待处置")
    user = as_user(_user(session, "juwei_a", "committee", {"committees": [a.committee.id]}))
    waiting = service.waiting_cases(session=session, user=user, committee_id=a.committee.id)
    assert {w.case.title: w.actions for w in waiting} == {
        "待处置": ["handle"], "待反馈": ["feed_back"], "待核查": ["verify"]}
    assert waiting[0].class_name == "乱堆物堆料"
    # another committee's cases are out of the scope, whatever committee is asked for
    assert service.waiting_cases(session=session, user=user, committee_id=b.committee.id) == []


def test_department_staff_wait_only_on_their_departments_cases(session: Session, trees: tuple[Tree, Tree],
                                                               as_user: Binder) -> None:
    a, _ = trees
    _case(session, a, "井盖缺失", class_code="C0101")  # 城建中心
    _case(session, a, "楼道隐患", class_code="E0602")  # 安监所
    chengjian = as_user(_user(session, "chengjian", "department", {"department": "城建中心"}))
    waiting = service.waiting_cases(session=session, user=chengjian, committee_id=a.committee.id)
    assert [w.case.title for w in waiting] == ["井盖缺失"]


def test_the_committees_of_each_role(session: Session, trees: tuple[Tree, Tree], as_user: Binder) -> None:
    a, b = trees
    juwei = _user(session, "juwei_a", "committee", {"committees": [a.committee.id]})
    grid = _user(session, "grid_b", "grid_worker", {"grids": [b.grid.id]})
    admin = _user(session, "boss", "admin", {})
    as_user(juwei)
    assert [c.id for c in service.committees(session=session)] == [a.committee.id]
    as_user(grid)
    assert [c.id for c in service.committees(session=session)] == [b.committee.id]
    as_user(admin)
    assert [c.id for c in service.committees(session=session)] == [a.committee.id, b.committee.id]


def test_ledger_parameters() -> None:
    special = service.ledger_params(ledger=service.LEDGERS["special"], committee_id=7)
    assert (special.place_id, special.tag, special.filters) == (7, "special_groups", {})
    one = service.ledger_params(ledger=service.LEDGERS["special"], committee_id=7, group="disabled", q="王", page=3)
    assert (one.tag, one.q, one.page, one.size) == ("disabled", "王", 3, service.LEDGER_PAGE)
    shops = service.ledger_params(ledger=service.LEDGERS["shops"], committee_id=7, group="disabled")
    assert (shops.tag, shops.filters) == (None, {"kind": "shop_operator"})


def test_residents_requests_newest_first_with_their_actions(session: Session, trees: tuple[Tree, Tree],
                                                            as_user: Binder) -> None:
    a, b = trees
    older = cases.open_case(session=session, title="噪音", class_code="E0503", source="resident", actor="r",
                            place_id=a.room.id, now=T0)
    cases.open_case(session=session, title="路灯", class_code="C0102", source="open311", actor="r",
                    place_id=a.room.id, dispatch=True, now=T0 + dt.timedelta(hours=1))
    _case(session, a, "巡查发现")  # not a resident's
    cases.open_case(session=session, title="南街噪音", class_code="E0503", source="resident", actor="r",
                    place_id=b.room.id, now=T0)
    user = as_user(_user(session, "juwei_a", "committee", {"committees": [a.committee.id]}))
    page, items = service.resident_requests(session=session, user=user, committee_id=a.committee.id, size=1)
    assert page.total == 2 and page.pages == 2
    assert [(i.case.title, i.actions, i.may_answer) for i in items] == [("路灯", ["handle"], True)]
    _, rest = service.resident_requests(session=session, user=user, committee_id=a.committee.id, page=2, size=1)
    assert [i.case.id for i in rest] == [older.id] and rest[0].actions == []
    answered = service.answer_request(session=session, user=user, case=older, note=" 已转物业 ")
    step = cases.timeline(session=session, case_id=answered.id)[-1]
    assert (step.action, step.note, step.data) == ("comment", "已转物业", {"answer": True})
    with pytest.raises(cases.CaseError) as refused:
        service.answer_request(session=session, user=user, case=older, note="")
    assert refused.value.field == "note"
