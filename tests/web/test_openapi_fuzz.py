"""schemathesis over the OpenAPI document: every operation, generated input, an administrator's
bearer token and a small registry; no answer may be a server error or break its own schema.

Driven with hypothesis directly (schemathesis' pytest plugin does not run under pytest 9).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.web.conftest import Registry

# per operation; SHEQU_FUZZ_EXAMPLES=200 for a deeper run by hand
EXAMPLES = int(os.environ.get("SHEQU_FUZZ_EXAMPLES", "25"))


def _run_operation(operation: Any, auth: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(headers=dict(auth),
                                   checks=[not_a_server_error, response_schema_conformance])
        except (AssertionError, BaseExceptionGroup):
            raise
        except Exception as exc:  # the app raised: a 500 in production
            raise AssertionError(f"{type(exc).__name__}: {exc}\n{case.as_curl_command()}") from exc

    check()


@pytest.mark.slow
def test_no_server_error_and_every_answer_fits_its_schema(app: FastAPI, registry: Registry,
                                                          auth: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _run_operation(operation, auth)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all, then report
            failures.append(f"{operation.label}: {type(exc).__name__}: {exc}"[:3000])
    assert operations > 20
    assert not failures, "\n\n".join(failures)
