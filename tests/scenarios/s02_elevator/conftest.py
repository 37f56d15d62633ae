"""The web fixtures of tests/web, reused here (pytest_plugins is for the root conftest only)."""

from tests.web.conftest import admin, app, auth, client, token  # noqa: F401
