"""S04 pages: the incident list with the supervision list, the building heat map, the incident with its SVG."""

from __future__ import annotations

import datetime as dt
import re

from shequ.core.iot.models import Device
from shequ.core.places.service import create_place
from shequ.scenarios.s04_throwing import service
from tests.factories import place_tree
from tests.scenarios.s04_throwing.test_locate import CAL
from tests.scenarios.s04_throwing.test_pipeline import throw
from tests.web.conftest import csrf_of, login


def _tower(session):
    tree = place_tree(session)
    tower = create_place(session=session, kind="building", code="BT", name="7号", parent=tree.compound, floors=18)
    unit = create_place(session=session, kind="unit", code="BTU2", name="2单元", parent=tower)
    floor = create_place(session=session, kind="floor", code="BTU2F12", name="12层", parent=unit, floor_no=12)
    create_place(session=session, kind="room", code="BTU2R1201", name="1201室", parent=floor, floor_no=12)
    cam = Device(code="FC-1", name="7号楼摄像机", type_code="facade_camera", place_id=tower.id, attrs=CAL)
    session.add(cam)
    session.flush()
    return tower, cam


def test_pages_show_incidents_the_repeat_room_the_heat_map_and_the_trajectory(client, session, admin):
    tower, cam = _tower(session)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    at = (dt.datetime.now(shanghai) - dt.timedelta(days=3)).replace(hour=22, minute=30)  # two nights at 22:30
    for k in range(2):
        service.record_fall(session=session, device_id=cam.id, ts_ms=int((at + dt.timedelta(days=k)).timestamp() * 1000),
                            data={"points": throw(34.2, 14.0), "video": f"clip-{k}"})
    bad = service.record_fall(session=session, device_id=cam.id, ts_ms=int(at.timestamp() * 1000),
                              data={"points": [{"t": 0}]})
    login(client)
    page = client.get("/throwing")
    assert page.status_code == 200
    assert page.text.count('data-incident="') == 3
    # both throws point at 1201 of unit 2: a repeat room on the supervision list
    assert 'data-room="BTU2R1201"' in page.text and "宣传提醒" in page.text
    assert "无法推算" in page.text

    heat = client.get(f"/throwing/buildings/{tower.id}")
    assert heat.status_code == 200
    assert 'data-floor="12" data-hour="22" data-count="2"' in heat.text

    [incident] = [i for i in service.list_incidents(session=session, filters=service.IncidentFilter())[0]
                  if i.video == "clip-0"]
    detail = client.get(f"/throwing/incidents/{incident.id}?lang=en")
    assert detail.status_code == 200
    assert "<svg" in detail.text and 'class="release"' in detail.text and 'data-floor="12"' in detail.text
    assert client.get(f"/throwing/incidents/{bad.id}").status_code == 200

    csrf = csrf_of(client, f"/throwing/incidents/{incident.id}")
    done = client.post(f"/throwing/incidents/{incident.id}/verdict", data={"verdict": "confirmed", "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    assert service.get_incident(session=session, incident_id=incident.id).verdict == "confirmed"
    wrong = client.post(f"/throwing/incidents/{incident.id}/verdict", data={"verdict": "maybe", "csrf_token": csrf})
    assert wrong.status_code == 422 and "verdict" in wrong.text

    assert client.get("/throwing/incidents/999999").status_code == 404
    bad_filter = client.get("/throwing?start=soon")
    assert bad_filter.status_code == 422 and re.search(r'data-error="start"', bad_filter.text)
