"""Open311 GeoReport v2 as a client sees it: services, posting requests (located, deduplicated),
reading them back as their case moves, tokens, errors in Open311's format, and no reporter's
personal data in any answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from shequ.core.cases import service as cases
from shequ.core.cases.duplicates import METRES_PER_DEGREE, find_duplicates
from shequ.core.cases.models import Case
from shequ.core.iam import service as iam
from shequ.core.places.models import Tenant
from shequ.core.registry.models import Person
from shequ.core.registry.validators import make_id_number
from tests.factories import Tree, place_tree
from tests.web.conftest import PASSWORD

V2 = "/open311/v2"
LON, LAT = 121.403, 31.003  # inside the compound 鹤庆新村 of place_tree's committee
PHONE = "13912345678"
NAME = ("小明", "王")  # first, last


def north(metres: float) -> float:
    return LAT + metres / METRES_PER_DEGREE


@pytest.fixture
def tree(session: Session) -> Tree:
    return place_tree(session)


@pytest.fixture
def resident_key(session: Session, tree: Tree) -> str:
    person = Person(name="王小明", sex="M", birth_date=dt.date(1990, 1, 1), residence_type="registered",
                    id_number=make_id_number("310112", dt.date(1990, 1, 1), 11), phone=PHONE,
                    place_id=tree.room.id)
    session.add(person)
    session.flush()
    user = iam.create_user(session=session, username="jumin1", password=PASSWORD, role="resident",
                           scope={"person_id": person.id})
    return iam.create_api_token(session=session, user=user, name="app", days=1)


def post(client: TestClient, key: str | None, **fields: Any) -> Any:
    data = {"service_code": "E0503", "description": "楼下 KTV 夜里很吵", **fields}
    if key:
        data["api_key"] = key
    return client.post(f"{V2}/requests.json", data=data)


def case_of(session: Session, code: str) -> Case:
    return session.scalars(select(Case).where(Case.code == code).execution_options(all_scopes=True)).one()


def test_services_are_the_public_classes(client: TestClient) -> None:
    for path in (f"{V2}/services", f"{V2}/services.json"):
        response = client.get(path)
        assert response.status_code == 200
        services = {s["service_code"]: s for s in response.json()}
        assert services["E0503"] == {
            "service_code": "E0503", "service_name": "噪声扰民", "description": "Noise nuisance",
            "metadata": True, "type": "realtime", "keywords": "街面秩序,噪声扰民,Noise nuisance",
            "group": "街面秩序"}
        assert "C0202" not in services  # not offered to residents
    english = {s["service_code"]: s for s in client.get(f"{V2}/services?lang=en").json()}
    assert english["E0503"]["service_name"] == "Noise nuisance"


def test_service_definitions_list_the_standard_attributes(client: TestClient) -> None:
    event = client.get(f"{V2}/services/E0503.json").json()
    assert event["service_code"] == "E0503"
    assert [a["code"] for a in event["attributes"]] == ["contact_time", "confirm_new"]
    contact = event["attributes"][0]
    assert contact["datatype"] == "singlevaluelist" and contact["required"] is False
    assert [v["key"] for v in contact["values"]] == ["any", "morning", "afternoon", "evening"]
    component = client.get(f"{V2}/services/C0101").json()
    assert component["attributes"][0]["code"] == "floor" and component["attributes"][0]["datatype"] == "number"
    missing = client.get(f"{V2}/services/C0202")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "service_code: no service 'C0202'"}]


def test_a_request_becomes_a_located_public_case_and_reads_back_its_status(
        client: TestClient, session: Session, tree: Tree, resident_key: str) -> None:
    response = post(client, resident_key, lat=str(LAT), long=str(LON), first_name=NAME[0], last_name=NAME[1],
                    phone=PHONE, media_url="https://example.org/p/1.jpg", **{"attribute[contact_time]": "evening"})
    assert response.status_code == 200, response.text
    [created] = response.json()
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    assert created["service_notice"] == f"已受理，编号 {created['service_request_id']}。"
    case = case_of(session, created["service_request_id"])
    assert case.source == "open311" and case.service_code == "E0503" and case.class_code == "E0503"
    assert case.public is True and case.stage == "reported"
    assert case.place_id == tree.compound.id and case.grid_id == tree.grid.id
    assert case.committee_id == tree.committee.id
    assert (case.lon, case.lat) == (LON, LAT)
    assert case.reporter_name == "王小明" and case.reporter_phone == PHONE
    assert case.attrs["open311"]["contact_time"] == "evening"
    assert created["account_id"] == str(case.reporter_user_id)

    [seen] = client.get(f"{V2}/requests/{case.code}.json").json()
    assert seen["service_request_id"] == case.code and seen["status"] == "open" and seen["stage"] == "reported"
    assert seen["service_code"] == "E0503" and seen["service_name"] == "噪声扰民"
    assert seen["address_id"] == str(tree.compound.id) and (seen["lat"], seen["long"]) == (LAT, LON)
    assert seen["media_url"] == "https://example.org/p/1.jpg"
    assert seen["requested_datetime"].endswith("+08:00") and seen["expected_datetime"] is None

    for action in ("register", "dispatch", "handle", "feed_back", "verify"):
        cases.act(session=session, case=case, action=action, actor="d1")
    [dispatched] = client.get(f"{V2}/requests/{case.code}").json()
    assert dispatched["status"] == "open" and dispatched["agency_responsible"] == "城运中心"
    assert dispatched["expected_datetime"] is not None
    cases.act(session=session, case=case, action="close", actor="d1", note="已联系 13800001111 整改完毕")
    [closed] = client.get(f"{V2}/requests/{case.code}").json()
    assert closed["status"] == "closed" and closed["stage"] == "closed"
    assert closed["status_notes"] == "已联系 138****1111 整改完毕"  # a phone in a note is masked

    listed = client.get(f"{V2}/requests", params={"status": "closed"}).json()
    assert [r["service_request_id"] for r in listed] == [case.code]
    assert client.get(f"{V2}/requests", params={"status": "open"}).json() == []
    assert [r["service_request_id"] for r in client.get(
        f"{V2}/requests", params={"service_request_id": f"{case.code},nope"}).json()] == [case.code]

    [token] = client.get(f"{V2}/tokens/{created['token']}").json()
    assert token == {"service_request_id": case.code, "token": created["token"]}


def test_a_request_needs_a_location_and_a_known_service(client: TestClient, tree: Tree, resident_key: str) -> None:
    response = post(client, resident_key)
    assert response.status_code == 400
    [error] = response.json()
    assert error["code"] == 400 and error["description"].startswith("location: required")
    assert "lat and long" in error["description"]
    half = post(client, resident_key, lat=str(LAT))
    assert half.status_code == 400 and half.json()[0]["description"].startswith("long:")
    far = post(client, resident_key, lat="91", long=str(LON))
    assert far.status_code == 400 and far.json()[0]["description"].startswith("lat:")
    unknown = post(client, resident_key, service_code="C0202", lat=str(LAT), long=str(LON))
    assert unknown.status_code == 400 and unknown.json()[0]["description"].startswith("service_code:")
    bad_attribute = post(client, resident_key, lat=str(LAT), long=str(LON), **{"attribute[floor]": "3"})
    assert bad_attribute.json() == [{"code": 400, "description": "attribute[floor]: not an attribute of service E0503"}]
    place = post(client, resident_key, address_id="999999999")
    assert place.status_code == 400 and place.json()[0]["description"].startswith("address_id:")


def test_an_address_id_or_json_body_or_bearer_token_will_do(
        client: TestClient, session: Session, tree: Tree, resident_key: str) -> None:
    by_place = post(client, resident_key, service_code="C0101", address_id=str(tree.building.id),
                    **{"attribute[floor]": "-1"})
    assert by_place.status_code == 200, by_place.text
    case = case_of(session, by_place.json()[0]["service_request_id"])
    assert case.place_id == tree.building.id and case.attrs["open311"]["floor"] == -1
    assert case.lon == tree.building.lon
    as_json = client.post(f"{V2}/requests", json={"service_code": "E0502", "lat": LAT, "long": LON,
                                                  "attribute": {"contact_time": "morning"}},
                          headers={"Authorization": f"Bearer {resident_key}"})
    assert as_json.status_code == 200, as_json.text
    assert case_of(session, as_json.json()[0]["service_request_id"]).attrs["open311"]["contact_time"] == "morning"


def test_posting_needs_a_key_with_case_report_unless_the_tenant_allows_anonymous(
        client: TestClient, session: Session, tree: Tree) -> None:
    anonymous = post(client, None, lat=str(LAT), long=str(LON))
    assert anonymous.status_code == 403
    assert anonymous.json()[0]["description"].startswith("api_key: required")
    wrong = post(client, "shq_not-a-key", lat=str(LAT), long=str(LON))
    assert wrong.status_code == 403 and wrong.json()[0]["description"] == "api_key: not a valid key"
    client_user = iam.create_user(session=session, username="boss", password=PASSWORD, role="leader")
    no_report = post(client, iam.create_api_token(session=session, user=client_user, days=1),
                     lat=str(LAT), long=str(LON))
    assert no_report.status_code == 403 and "case.report" in no_report.json()[0]["description"]
    tenant = session.get(Tenant, session.info["tenant_id"])
    assert tenant is not None
    tenant.settings = {"open311_anonymous": True}
    session.flush()
    allowed = post(client, None, lat=str(LAT), long=str(LON))
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()[0]["account_id"] is None
    assert case_of(session, allowed.json()[0]["service_request_id"]).reporter_user_id is None


def test_nearby_requests_of_the_same_service_are_suggested(
        client: TestClient, session: Session, tree: Tree, resident_key: str) -> None:
    first = post(client, resident_key, lat=str(LAT), long=str(LON)).json()[0]
    second = post(client, resident_key, lat=str(north(20)), long=str(LON)).json()[0]
    assert first["service_request_id"] in second["service_notice"]
    assert "约 20 米" in second["service_notice"]
    assert second["service_request_id"] != first["service_request_id"]  # created anyway
    second_case = case_of(session, second["service_request_id"])
    assert second_case.attrs["open311"]["possible_duplicates"][0]["code"] == first["service_request_id"]

    candidates = client.get(f"{V2}/requests/duplicates",
                            params={"service_code": "E0503", "lat": north(20), "long": LON}).json()
    by_id = {c["service_request_id"]: c for c in candidates}
    assert by_id[first["service_request_id"]]["distance_m"] == pytest.approx(20, abs=0.5)
    assert by_id[second["service_request_id"]]["distance_m"] == pytest.approx(0, abs=0.5)

    far = post(client, resident_key, lat=str(north(200)), long=str(LON)).json()[0]
    assert far["service_notice"] == f"已受理，编号 {far['service_request_id']}。"
    near_far = client.get(f"{V2}/requests/duplicates",
                          params={"service_code": "E0503", "lat": north(200), "long": LON}).json()
    assert [c["service_request_id"] for c in near_far] == [far["service_request_id"]]
    other_service = client.get(f"{V2}/requests/duplicates",
                               params={"service_code": "E0502", "lat": LAT, "long": LON}).json()
    assert other_service == []
    confirmed = post(client, resident_key, lat=str(LAT), long=str(LON), **{"attribute[confirm_new]": "true"})
    assert confirmed.json()[0]["service_notice"].endswith("。") and "附近" not in confirmed.json()[0]["service_notice"]
    # the same finder serves the case page: around the first request, the second (20 m) and the
    # confirmed one (0 m), nearest first; not the one 200 m away
    found = find_duplicates(session=session, class_code="E0503", lon=LON, lat=LAT,
                            exclude_id=case_of(session, first["service_request_id"]).id)
    assert [c.case.code for c in found] == [confirmed.json()[0]["service_request_id"], second["service_request_id"]]
    assert found[1].distance_m == pytest.approx(20, abs=0.01)


def test_duplicates_need_a_service_and_a_point(client: TestClient) -> None:
    missing = client.get(f"{V2}/requests/duplicates", params={"lat": LAT, "long": LON})
    assert missing.status_code == 400 and missing.json()[0]["description"] == "service_code: required"
    no_point = client.get(f"{V2}/requests/duplicates", params={"service_code": "E0503"})
    assert no_point.status_code == 400 and no_point.json()[0]["description"].startswith("lat:")


def test_private_cases_are_not_published(client: TestClient, session: Session, tree: Tree) -> None:
    case = cases.open_case(session=session, title="内部巡查", class_code="E0503", source="patrol", actor="g1",
                           place_id=tree.building.id)
    assert client.get(f"{V2}/requests/{case.code}").status_code == 404
    assert client.get(f"{V2}/requests").json() == []
    assert client.get(f"{V2}/requests/duplicates",
                      params={"service_code": "E0503", "lat": tree.building.lat, "long": tree.building.lon}).json() == []


def test_no_reporter_data_in_any_answer(client: TestClient, tree: Tree, resident_key: str) -> None:
    created = post(client, resident_key, lat=str(LAT), long=str(LON), first_name=NAME[0], last_name=NAME[1],
                   phone=PHONE, email="wang@example.org", description=f"噪声，请回电 {PHONE}").json()[0]
    code = created["service_request_id"]
    answers = [client.get(path, params=params) for path, params in (
        (f"{V2}/requests", {}), (f"{V2}/requests.json", {"service_request_id": code}),
        (f"{V2}/requests/{code}", {}), (f"{V2}/tokens/{created['token']}", {}),
        (f"{V2}/requests/duplicates", {"service_code": "E0503", "lat": LAT, "long": LON}),
        (f"{V2}/services", {}), (f"{V2}/discovery", {}))]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert code in answers[0].text
    assert "请回电 139****5678" in answers[0].text  # a phone written into the description is masked
    for answer in answers:
        for secret in (PHONE, "王小明", NAME[0], "wang@example.org", "jumin1"):
            assert secret not in answer.text, (answer.url, secret)


def test_requests_filters_are_checked(client: TestClient) -> None:
    assert client.get(f"{V2}/requests", params={"status": "pending"}).json()[0]["description"].startswith("status:")
    wide = client.get(f"{V2}/requests", params={"start_date": "2026-01-01T00:00:00+08:00",
                                                "end_date": "2026-12-31T00:00:00+08:00"})
    assert wide.status_code == 400 and wide.json()[0]["description"].startswith("end_date:")
    bad = client.get(f"{V2}/requests", params={"start_date": "yesterday"})
    assert bad.status_code == 400 and bad.json()[0]["description"].startswith("start_date:")
    assert client.get(f"{V2}/requests", params={"start_date": "2026-11-01T00:00:00Z"}).status_code == 200


def test_xml_is_refused_and_unknown_ids_are_open311_errors(client: TestClient) -> None:
    for response in (client.get(f"{V2}/services.xml"), client.get(f"{V2}/requests/20260101-000001.xml")):
        assert response.status_code == 400
        assert response.json()[0]["description"].startswith("format: XML is not supported")
    assert client.get(f"{V2}/requests/20260101-000001").json() == [
        {"code": 404, "description": "service_request_id: no request '20260101-000001'"}]
    assert client.get(f"{V2}/tokens/abc").status_code == 404
    discovery = client.get(f"{V2}/discovery.json").json()
    assert discovery["endpoints"][0]["formats"] == ["application/json"]
