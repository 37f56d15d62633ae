"""A case taken through every stage by the service."""

import datetime as dt

from shequ.core.cases import service
from tests.factories import place_tree


def test_case_goes_through_every_stage(session):
    tree = place_tree(session)
    now = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)  # Friday 09:00 Shanghai
    case = service.open_case(session=session, title="井盖缺失", class_code="C0101", source="patrol",
                             actor="g1", place_id=tree.building.id, now=now, dispatch=True)
    assert case.stage == "dispatched" and case.department == "城建中心"
    assert case.grid_id == tree.grid.id and case.committee_id == tree.committee.id
    # 8 working hours from Friday 09:00: 7.5 h on Friday (08:30–12:00, 13:00–17:30), 0.5 h on Monday
    assert case.due_at == dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    for action in ("handle", "feed_back", "verify", "close"):
        service.act(session=session, case=case, action=action, actor="x", now=now)
    service.act(session=session, case=case, action="evaluate", actor="r", satisfaction=5, now=now)
    steps = [s.action for s in service.timeline(session=session, case_id=case.id)]
    assert steps == ["report", "register", "dispatch", "handle", "feed_back", "verify", "close", "evaluate"]
    assert case.closed_on_time and case.handled_on_time
