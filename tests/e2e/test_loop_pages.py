"""The loop in a real browser: a smoke reading becomes an alarm on the console; the dispatcher
acknowledges it, follows it to its case and takes the case a stage further."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import TENANT, Site, log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def smoke(site: Site) -> Iterator[tuple[int, int]]:
    """The demo devices and default rules; the second smoke detector reports smoke; its case is
    opened as the worker would right after the batch."""
    from shequ.core import loop
    from shequ.core.alarms.models import Alarm
    from shequ.core.iot.models import Device
    from shequ.core.iot.pipeline import Inbound, default_pipeline, now_ms
    from shequ.db import get_engine, session_scope
    from shequ.sim.demo import prepare_devices

    prepare_devices(tenant_id=site.tenant_id, scale="small", seed=7)
    with session_scope(tenant_id=site.tenant_id) as s:
        dev = s.scalars(select(Device).where(Device.type_code == "smoke_detector").order_by(Device.id)
                        .offset(1)).first()
        assert dev is not None
        code = dev.code
    result = default_pipeline(get_engine()).process([Inbound(
        json.dumps({"id": "e2e-loop-smoke", "ts": now_ms(), "v": {"smoke": True}}).encode(), "telemetry",
        TENANT, code)])
    assert result.accepted == 1
    loop.open_pending_cases(get_engine())
    with session_scope(tenant_id=site.tenant_id) as s:
        alarm = s.scalars(select(Alarm).where(Alarm.device_id == dev.id)).one()
        assert alarm.case_id is not None
        yield alarm.id, alarm.case_id


def test_an_alarm_is_acknowledged_and_its_case_taken_a_stage_further(
        page: Any, site: Site, smoke: tuple[int, int]) -> None:
    alarm_id, case_id = smoke
    log_in(page, site)
    page.goto(f"{site.url}/alarms")
    row = page.locator("tr", has=page.locator(f"a[href='/alarms/{alarm_id}']"))
    assert row.count() == 1
    assert "CRITICAL" in row.inner_text() or "紧急" in row.inner_text()
    page.screenshot(path="/tmp/shequ-alarms.png", full_page=False)
    row.locator(f"form[action='/alarms/{alarm_id}/ack'] button").click()
    page.wait_for_load_state("networkidle")
    row = page.locator("tr", has=page.locator(f"a[href='/alarms/{alarm_id}']"))
    assert "已确认" in row.inner_text()
    row.locator(f"a[href='/cases/{case_id}']").click()
    page.wait_for_url(f"{site.url}/cases/{case_id}")
    assert page.locator("[data-stage]").get_attribute("data-stage") == "dispatched"
    assert "城运中心" in page.inner_text("dl.facts")
    page.locator("form[data-action=handle] button").click()
    page.wait_for_url(f"{site.url}/cases/{case_id}")
    assert page.locator("[data-stage]").get_attribute("data-stage") == "handled"
    page.screenshot(path="/tmp/shequ-case.png", full_page=True)
    assert page.console_errors == []
