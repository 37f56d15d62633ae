"""General pages: login, logout and the home page with the size of each kind."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from shequ.config import get_settings
from shequ.core.iam import service as iam
from shequ.core.iam.models import Role
from shequ.db import bind_context
from shequ.web import nav
from shequ.web.deps import (
    SESSION_COOKIE,
    PageUser,
    SessionDep,
    client_ip,
    default_tenant_code,
    optional_page_user,
    render,
    tenant_by_code,
    tenants,
)
from shequ.web.records import PLURALS, kind_counts
from shequ.web.security import csrf_protect, secure_cookies

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may be a redirect target."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
def login_page(request: Request, session: SessionDep, next: str = "/") -> Response:
    if optional_page_user(request, session) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", next=_safe_next(next), error="", username="",
                  tenants=tenants(session),
                  tenant=default_tenant_code(request))


@router.post("/login")
def login(request: Request, session: SessionDep,
          username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/", tenant: Annotated[str, Form()] = "") -> Response:
    again = {"next": _safe_next(next), "username": username, "tenants": tenants(session),
             "tenant": tenant}
    if not username.strip() or not password:
        return render(request, "login.html", status_code=400, error="login.missing", **again)
    if tenant:  # a deployment with several subdistricts: sign in to the one chosen
        tenant_id = tenant_by_code(session, request, tenant)
        if tenant_id is None:
            return render(request, "login.html", status_code=400, error="login.unknown_tenant", **again)
        bind_context(session, tenant_id=tenant_id, actor="anonymous")
    user = iam.authenticate(session=session, username=username, password=password,
                            ip=client_ip(request))
    if user is None:
        return render(request, "login.html", status_code=401, error="login.failed", **again)
    token = iam.start_session(session=session, user=user, ip=client_ip(request),
                              user_agent=request.headers.get("user-agent", ""))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies(),
                        max_age=get_settings().session_hours * 3600, path="/")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    iam.end_session(session=session, token=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request, session: SessionDep, user: PageUser) -> Response:
    if user.role == Role.RESIDENT:  # a resident has pages of their own, and no registry
        return RedirectResponse(nav.landing(user) or "/m", status_code=303)
    counts = kind_counts(session=session)
    return render(request, "home.html", counts=counts, plurals=PLURALS)
