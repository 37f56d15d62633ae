"""The resident's service under the resident's own scope: only my cases, reporting at my building
or at a point elsewhere, nothing created on a refusal, what the progress shows, rating rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.cases.models import Case, CaseAttachment
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iam.scope import scope_of
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from shequ.db import bind_context
from shequ.platforms.resident import service
from tests.factories import Tree, place_tree, png

PASSWORD = "jiangchuan2024"




@dataclass
class Town:
    north: Tree
    south: Tree
    ann: User  # lives in the north tree's room 301
    bob: User  # lives in the south tree


@pytest.fixture
def town(session: Session) -> Town:
    north = place_tree(session, tag="N", committee_name="北街居委会")
    south = place_tree(session, tag="S", lon=121.45, committee_name="南街居委会", lane="300")
    users = []
    for seq, (name, tree) in enumerate((("安居民", north), ("鲍居民", south)), start=1):
        birth = dt.date(1950 + seq, 1, 1)
        person = Person(name=name, sex="F", birth_date=birth, residence_type="registered",
                        id_number=make_id_number("310112", birth, 200 + seq), place_id=tree.room.id)
        session.add(person)
        session.flush()
        users.append(iam.create_user(session=session, username=f"res_svc_{seq}", password=PASSWORD,
                                     role="resident", display_name=name, scope={"person_id": person.id}))
    return Town(north, south, users[0], users[1])


def as_user(session: Session, user: User) -> None:
    """Bind the session as a request of ``user`` would (their scope limits every query)."""
    bind_context(session, tenant_id=user.tenant_id, actor=user.username, scope=scope_of(session=session, user=user))


def as_staff(session: Session) -> None:
    bind_context(session, tenant_id=session.info["tenant_id"], actor="dispatcher", scope=None)


def count_cases(session: Session) -> int:
    return session.scalar(select(func.count(Case.id)).execution_options(all_scopes=True)) or 0


def report(session: Session, user: User, **changes: object) -> Case:
    form = service.ReportIn(class_code="C0102", description="楼下路灯不亮", location="home")
    for key, value in changes.items():
        setattr(form, key, value)
    return service.report(session=session, user=user, form=form)


def test_a_resident_sees_no_case_through_the_scope(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    case = report(session, town.ann)
    session.expunge_all()  # what the scope lets a fresh query see
    assert session.scalar(select(Case).where(Case.id == case.id)) is None
    assert service.my_case(session=session, user=town.ann, case_id=case.id) is not None


def test_open_a_case_at_my_building_under_my_scope(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    case = report(session, town.ann, title="", photos=[service.Photo("路灯.png", png())], address_detail="1单元门口")
    assert case.source == "resident" and case.reporter_user_id == town.ann.id
    assert case.place_id == town.north.building.id
    assert (case.grid_id, case.committee_id, case.compound_id) == (
        town.north.grid.id, town.north.committee.id, town.north.compound.id)
    assert case.title == "路灯损坏"  # no title: the category's name
    assert case.address_text.endswith("（1单元门口）") and "鹤庆路" in case.address_text
    assert case.stage == "reported" and case.code
    assert cases.route(session=session, case=case).department == "城建中心"  # the class decides
    [photo] = service.photos(session=session, case=case)
    assert photo.content_type == "image/png" and photo.uploaded_by == "res_svc_1"


def test_report_at_a_point_outside_my_tree(session: Session, town: Town) -> None:
    """A point in the other committee: the case is placed there, so its staff see it."""
    as_user(session, town.ann)
    case = report(session, town.ann, location="map", lon="121.4535", lat="31.0035")
    assert case.place_id == town.south.compound.id
    assert case.committee_id == town.south.committee.id
    assert (case.lon, case.lat) == (121.4535, 31.0035)


@pytest.mark.parametrize(("changes", "field"), [
    ({"class_code": ""}, "class_code"),
    ({"class_code": "C0202"}, "class_code"),  # not offered to residents
    ({"class_code": "NOPE"}, "class_code"),
    ({"description": "   "}, "description"),
    ({"title": "x" * 201}, "title"),
    ({"photos": [service.Photo("a.png", b"not an image")]}, "photos"),
    ({"photos": [service.Photo("a.png", png())] * 7}, "photos"),
    ({"location": "map", "lon": "", "lat": ""}, "location"),
    ({"location": "gps", "lon": "121.0", "lat": "abc"}, "location"),
    ({"location": "map", "lon": "100.0", "lat": "20.0"}, "location"),  # outside the subdistrict
    ({"location": "moon"}, "location"),
])
def test_a_refused_report_names_the_field_and_creates_nothing(session: Session, town: Town,
                                                              changes: dict[str, object], field: str) -> None:
    as_user(session, town.ann)
    before = count_cases(session)
    with pytest.raises(service.ReportRefused) as refused:
        report(session, town.ann, **changes)
    assert field in refused.value.errors
    assert count_cases(session) == before
    assert session.scalar(select(func.count(CaseAttachment.id))) == 0


def test_every_bad_field_is_named_at_once(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    with pytest.raises(service.ReportRefused) as refused:
        report(session, town.ann, class_code="", description="", location="map")
    assert set(refused.value.errors) == {"class_code", "description", "location"}


def test_a_user_without_a_home_must_pick_a_place(session: Session, town: Town) -> None:
    homeless = Person(name="无址居民", sex="M", residence_type="resident")
    session.add(homeless)
    session.flush()
    stranger = iam.create_user(session=session, username="res_svc_home", password=PASSWORD, role="resident",
                               scope={"person_id": homeless.id})
    as_user(session, stranger)
    assert service.home_place(session=session, user=stranger) is None
    with pytest.raises(service.ReportRefused) as refused:
        report(session, stranger)
    assert "location" in refused.value.errors


def test_my_cases_only(session: Session, town: Town) -> None:
    as_user(session, town.bob)
    bobs = report(session, town.bob, description="南街的问题")
    as_user(session, town.ann)
    first = report(session, town.ann, description="第一件")
    second = report(session, town.ann, description="第二件", class_code="E0503")
    listed = service.my_cases(session=session, user=town.ann)
    assert [c.id for c in listed.items] == [second.id, first.id] and listed.total == 2
    assert service.open_count(session=session, user=town.ann) == 2
    assert service.my_case(session=session, user=town.ann, case_id=bobs.id) is None
    assert service.photo(session=session, user=town.ann, case_id=bobs.id, attachment_id=1) is None


def close(session: Session, case: Case) -> None:
    """Take a case to 已结案 as the dispatcher and the department would."""
    as_staff(session)
    for action in ("register", "dispatch", "handle", "feed_back", "verify", "close"):
        cases.act(session=session, case=case, action=action, actor="dispatcher",
                  note="已更换灯泡" if action == "handle" else "")


def test_rating_rules(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    case = report(session, town.ann)
    with pytest.raises(service.ReportRefused) as early:
        service.rate(session=session, user=town.ann, case=case, satisfaction="5")
    assert "satisfaction" in early.value.errors and case.stage == "reported"
    assert not service.may_rate(town.ann, case)
    close(session, case)
    as_user(session, town.ann)
    assert service.may_rate(town.ann, case) and not service.may_rate(town.bob, case)
    for bad in ("", "0", "6", "x", "10"):
        with pytest.raises(service.ReportRefused) as refused:
            service.rate(session=session, user=town.ann, case=case, satisfaction=bad)
        assert "satisfaction" in refused.value.errors
    with pytest.raises(service.ReportRefused) as other:
        service.rate(session=session, user=town.bob, case=case, satisfaction="1")  # not the reporter
    assert "satisfaction" in other.value.errors
    service.rate(session=session, user=town.ann, case=case, satisfaction="4", comment="修得很快")
    assert (case.stage, case.satisfaction, case.satisfaction_note) == ("evaluated", 4, "修得很快")
    with pytest.raises(service.ReportRefused):
        service.rate(session=session, user=town.ann, case=case, satisfaction="5")
    assert case.satisfaction == 4


def test_progress_shows_stage_changes_and_comments_not_internal_steps(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    case = report(session, town.ann)
    as_staff(session)
    cases.act(session=session, case=case, action="register", actor="dispatcher")
    cases.act(session=session, case=case, action="dispatch", actor="dispatcher")
    cases.act(session=session, case=case, action="supervise", actor="dispatcher", note="内部督办")
    cases.act(session=session, case=case, action="extend", actor="dispatcher", hours=4, note="内部延期原因")
    cases.act(session=session, case=case, action="comment", actor="dispatcher", note="师傅下午上门")
    steps = service.progress(session=session, case=case)
    assert [s.action for s in steps] == ["report", "register", "dispatch", "comment"]
    assert steps[2].department == "城建中心"
    assert steps[3].note == "师傅下午上门"
    assert "内部" not in " ".join(s.note for s in steps)


def test_the_map_shows_building_outlines_without_names(session: Session, town: Town) -> None:
    as_user(session, town.ann)
    data = service.map_footprints(session=session, user=town.ann)
    assert len(data["buildings"]["features"]) == 2  # both trees' buildings, one out of scope
    assert all(f["properties"] == {} for f in data["buildings"]["features"])
    assert "12号" not in str(data) and "南街" not in str(data)
    assert data["home"]["geometry"] == town.north.building.geometry
    assert data["centre"] == [town.north.building.lon, town.north.building.lat]
