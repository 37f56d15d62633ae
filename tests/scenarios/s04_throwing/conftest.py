"""Web fixtures for S04's page tests, reused from tests/web."""

from tests.web.conftest import admin, app, client  # noqa: F401
