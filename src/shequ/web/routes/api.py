"""API of access: health, bearer tokens and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import text

import shequ
from shequ.core.iam import service as iam
from shequ.core.iam.schemas import TokenOut, TokenRequest, UserOut
from shequ.db import get_engine
from shequ.web.deps import ApiUser, SessionDep, client_ip, lang_of

router = APIRouter(tags=["access"])
TOKEN_DAYS = 30


@router.get("/health", summary="Health: database reachable, version (no auth)")
def health() -> JSONResponse:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        db = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means the database is unreachable
        db = f"error: {type(exc).__name__}"
    status = 200 if db == "ok" else 503
    return JSONResponse({"status": "ok" if db == "ok" else "error", "db": db,
                         "version": shequ.__version__}, status_code=status)


async def _credentials(request: Request) -> TokenRequest:
    if request.headers.get("content-type", "").startswith("application/json"):
        data: Any = await request.json()
    else:
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
    return TokenRequest.model_validate(data)


@router.post("/auth/token", response_model=TokenOut,
             summary="Exchange username and password (form or JSON) for a bearer token")
async def token(request: Request, session: SessionDep) -> Any:
    try:
        creds = await _credentials(request)
    except (ValidationError, ValueError) as exc:
        errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                  for e in getattr(exc, "errors", lambda: [])()] or [{"field": "body", "message": str(exc)}]
        return JSONResponse({"detail": "需要 username 和 password (username and password required)",
                             "errors": errors}, status_code=422)
    user = iam.authenticate(session=session, username=creds.username, password=creds.password,
                            ip=client_ip(request))
    if user is None:
        # a plain response, not an exception: the failure count and audit row must be committed
        return JSONResponse({"detail": "用户名或密码错误，或账号已暂时锁定 (wrong credentials or locked)"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    value = iam.create_api_token(session=session, user=user, name="api:auth/token", days=TOKEN_DAYS)
    return TokenOut(access_token=value, expires_in_days=TOKEN_DAYS)


@router.get("/me", response_model=UserOut, summary="The user behind the token")
def me(request: Request, user: ApiUser) -> UserOut:
    return UserOut(id=user.id, username=user.username, display_name=user.display_name, role=user.role,
                   role_label=iam.role_label(user.role, lang_of(request)))
