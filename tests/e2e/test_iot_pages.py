"""The device pages in a real browser: a smoke alarm sent by a device shows in the list and on
the device page; a dispatcher-level user sends a command that the device answers; a token is
shown once when rotated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.e2e.conftest import TENANT, Site, log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def alarmed(site: Site) -> Iterator[tuple[int, str]]:
    """Demo devices for the e2e tenant; one smoke detector reports smoke; the devices answer commands."""
    from shequ.core.iot.downlink import local_downlink
    from shequ.core.iot.models import Device
    from shequ.core.iot.pipeline import Inbound, default_pipeline, now_ms
    from shequ.db import get_engine, session_scope
    from shequ.sim.demo import prepare_devices

    prepare_devices(tenant_id=site.tenant_id, scale="small", seed=7)
    with session_scope(tenant_id=site.tenant_id) as s:
        dev = s.scalars(select(Device).where(Device.type_code == "smoke_detector").order_by(Device.id)).first()
        assert dev is not None
        device_id, code = dev.id, dev.code
    pipeline = default_pipeline(get_engine())
    result = pipeline.process([Inbound(json.dumps({"id": "e2e-smoke", "ts": now_ms(), "v": {"smoke": True}}).encode(),
                                       "telemetry", TENANT, code)])
    assert result.accepted == 1

    def device(tenant: str, device_code: str, payload: bytes) -> None:  # the device answers at once
        cmd = json.loads(payload)
        pipeline.process([Inbound(json.dumps({"id": f"r{cmd['id']}", "ts": now_ms(), "cmd": cmd["id"], "ok": True,
                                              "result": {"silenced": True}}).encode(), "reply", tenant, device_code)])

    local_downlink().subscribe(device)
    yield device_id, code
    local_downlink().unsubscribe(device)


def test_a_smoke_alarm_shows_in_the_list_and_the_device_answers_a_command(
        page: Any, site: Site, alarmed: tuple[int, str]) -> None:
    device_id, code = alarmed
    log_in(page, site)
    page.goto(f"{site.url}/iot/devices")
    page.select_option("select[name=condition]", "alarm")
    page.wait_for_url(re.compile(r".*condition=alarm"))
    row = page.locator("tr", has_text=code)
    assert row.count() == 1
    page.screenshot(path="/tmp/shequ-devices.png", full_page=False)
    row.locator("a").first.click()
    page.wait_for_url(f"{site.url}/iot/devices/{device_id}")
    assert page.locator("[data-condition]").first.get_attribute("data-condition") == "alarm"

    page.locator("form.command-form", has_text="silence").or_(
        page.locator("form.command-form").first).first.locator("button").click()
    page.wait_for_url(re.compile(rf".*/iot/devices/{device_id}.*"))
    page.reload()
    assert page.locator("table.commands [data-status]").first.get_attribute("data-status") == "acked"
    assert page.console_errors == []


def test_a_rotated_token_is_shown_once(page: Any, site: Site, alarmed: tuple[int, str]) -> None:
    device_id, _code = alarmed
    log_in(page, site)
    page.goto(f"{site.url}/iot/devices/{device_id}")
    page.locator(f"form[action='/iot/devices/{device_id}/token'] button").click()
    token = page.locator("[data-new-token]").inner_text()
    assert token.startswith("sqd_")
    page.goto(f"{site.url}/iot/devices/{device_id}")
    assert page.locator("[data-new-token]").count() == 0
    assert token not in page.content()
