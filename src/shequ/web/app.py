"""The web application: pages and the API under /api/v1, with sessions, CSRF protection,
security headers and Chinese/English pages."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

import shequ
from shequ.core.errors import FieldError
from shequ.core.plugins import load_scenarios, resolve
from shequ.logs import install as install_log_masking
from shequ.platforms import PLATFORMS
from shequ.web.context import RequestContextMiddleware
from shequ.web.deps import LoginRequired, add_template_dir, render, scenario_enabled
from shequ.web.security import BrowserMiddleware

API = "/api/v1"
STATIC = Path(__file__).parent / "static"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API + "/") or request.url.path == API


def _field_of(loc: tuple[object, ...] | list[object]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "request"


# what every 422 of the API says (see the handlers below), replacing FastAPI's default shape
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "the problems, in one sentence"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "description": "one problem: the field (parameter) and message, or for a rejected "
                           "import the row, column, value and reason",
            "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                           "row": {"type": "integer"}, "column": {"type": "string"},
                           "value": {"type": "string"}, "reason": {"type": "string"}}}},
    },
}


def _document_errors(app: FastAPI) -> None:
    """The OpenAPI document describes the 422 answers as the app really gives them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["HTTPValidationError"] = ERROR_SCHEMA
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(*, tenant_code: str | None = None) -> FastAPI:
    """Build the app: static files, the routers of each domain, and the error pages.

    It serves one tenant (subdistrict): ``tenant_code``, by default SHEQU_DEFAULT_TENANT.
    """
    app = FastAPI(
        title="shequ 社区数字化平台 API",
        version=getattr(shequ, "__version__", "0.1.0"),
        openapi_url=f"{API}/openapi.json",
        # Swagger UI would load its assets from a CDN; the platform works offline, so no docs page.
        docs_url=None,
        redoc_url=None,
    )
    app.state.tenant_ids = {}
    app.state.tenant_code = tenant_code
    app.add_middleware(BrowserMiddleware)
    app.add_middleware(RequestContextMiddleware)  # outermost: the client address for the audit log
    install_log_masking()
    from shequ.core import loop

    loop.install()  # HTTP ingest evaluates the rules; domain events reach notifications and webhooks
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    from shequ.core.alarms import routes as alarm_routes
    from shequ.core.cases import kpi_routes, open311
    from shequ.core.cases import routes as case_routes
    from shequ.core.iam import audit_routes
    from shequ.core.iam import routes as iam_routes
    from shequ.core.notify import routes as notify_routes
    from shequ.core.places import routes as places_routes
    from shequ.core.registry import routes as registry_routes
    from shequ.core.rules import routes as rule_routes
    from shequ.web.routes import api as api_routes
    from shequ.web.routes import iot as iot_routes
    from shequ.web.routes import pages as page_routes
    from shequ.web.routes import twin as twin_routes

    app.include_router(api_routes.router, prefix=API)
    app.include_router(iam_routes.api, prefix=API)
    app.include_router(audit_routes.api, prefix=API)
    app.include_router(places_routes.api, prefix=API)
    app.include_router(registry_routes.api, prefix=API)
    app.include_router(twin_routes.api, prefix=API)
    app.include_router(iot_routes.api, prefix=API)
    app.include_router(iot_routes.metrics_router)
    for module in (rule_routes, alarm_routes, case_routes, kpi_routes, notify_routes):
        app.include_router(module.api, prefix=API)
        app.include_router(module.pages)
    app.include_router(open311.router, prefix="/open311/v2")
    app.include_router(page_routes.router)
    app.include_router(audit_routes.pages)
    app.include_router(places_routes.pages)
    app.include_router(registry_routes.pages)
    app.include_router(iot_routes.pages)
    for platform in PLATFORMS:  # the pages of each level: brain, grid, committee, resident
        add_template_dir(platform.TEMPLATES)
        app.include_router(importlib.import_module(f"{platform.__name__}.routes").router)
    for spec in load_scenarios().scenarios.values():
        if spec.templates:
            add_template_dir(spec.templates)
        if spec.router is not None:
            app.include_router(resolve(spec.router), dependencies=[Depends(scenario_enabled(spec.id))])

    _document_errors(app)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            # htmx follows redirects inside the target; tell it to load the login page instead
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(FieldError)  # BadParam and every service's refusal of an input
    async def _bad_param(request: Request, exc: FieldError) -> Response:
        body = {"detail": str(exc), "errors": [{"field": exc.field, "message": exc.message}]}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": _field_of(e.get("loc", ())), "message": e.get("msg", "")}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        if not _is_api(request):
            return render(request, "error.html", status_code=422, message=detail)
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/static/"):
            return await http_exception_handler(request, exc)
        keys = {404: "error.not_found", 403: "error.forbidden"}
        message = str(exc.detail)
        if exc.status_code == 403 and exc.detail == "csrf":
            key = "error.csrf"
        else:
            key = keys.get(exc.status_code, "")
        return render(request, "error.html", status_code=exc.status_code, key=key,
                      message="" if key else message)

    return app
