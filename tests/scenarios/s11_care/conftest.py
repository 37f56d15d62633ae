"""S11 web tests reuse the web fixtures (the app on the test's rolled-back session)."""

from tests.web.conftest import admin, app, client  # noqa: F401
