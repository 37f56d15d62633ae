"""The web fixtures of tests/web, reused for S03's pages and API."""

from tests.web.conftest import admin, app, auth, client, token  # noqa: F401
