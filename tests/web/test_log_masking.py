"""A search by phone or ID number through the API leaves no plaintext in the logs (the HTTP
client logs every URL with its query string; SQL is logged with its parameters at DEBUG)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Registry


def test_an_api_search_by_phone_or_id_number_logs_no_plaintext(
        client: TestClient, auth: dict, registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    phone, number = registry.phones["王磊"], registry.id_numbers["王磊"]
    with caplog.at_level(logging.DEBUG):
        for q in (phone, number):
            found = client.get("/api/v1/people", headers=auth, params={"q": q})
            assert [p["name"] for p in found.json()["items"]] == ["王磊"]
    assert any("/api/v1/people?q=" in r.getMessage() for r in caplog.records)  # the URL was logged
    everything = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert phone not in everything and number not in everything
