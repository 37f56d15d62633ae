"""Request dependencies: the database session of a request, the current user (cookie for pages,
bearer token for the API), permission checks, and rendering a page with its common context."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from shequ.config import get_settings
from shequ.core.iam import service as iam
from shequ.core.iam.models import User
from shequ.core.iam.scope import Scope, scope_of
from shequ.core.places.models import Tenant
from shequ.core.plugins import enabled_ids
from shequ.core.registry import kinds
from shequ.db import bind_context, session_factory
from shequ.web import nav
from shequ.web.i18n import t

SESSION_COOKIE = "shequ_session"
LARGE_FONT_COOKIE = "shequ_large"  # 适老化: "1" shows every page in large type
TEMPLATES = Path(__file__).parent / "templates"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# the kernel's templates, then each platform's and scenario's (``add_template_dir``); a platform
# keeps its own under a folder of its name (``brain/index.html``) so that names never clash
_loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(TEMPLATES))]
templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.ChoiceLoader(_loaders), autoescape=True))

T = TypeVar("T")


def add_template_dir(path: str | Path) -> None:
    """Let templates of a platform or scenario package be found by name."""
    folder = str(path)
    if not any(getattr(ld, "searchpath", None) == [folder] for ld in _loaders):
        _loaders.append(jinja2.FileSystemLoader(folder))


class LoginRequired(Exception):
    """Raised by page dependencies when nobody is logged in; answered with a redirect."""

    def __init__(self, next_url: str = "/"):
        self.next_url = next_url


def tenant_by_code(session: Session, request: Request, code: str) -> int | None:
    """The id of a tenant named by its code (cached per app), or None."""
    cache: dict[str, int] = request.app.state.tenant_ids
    if code not in cache:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.code == code))
        if tenant_id is None:
            return None
        cache[code] = tenant_id
    return cache[code]


def tenants(session: Session) -> list[Tenant]:
    """Every tenant of the deployment (for the login page's choice when there are several)."""
    return list(session.scalars(select(Tenant).order_by(Tenant.code)))


def default_tenant_code(request: Request) -> str:
    """The tenant a request works in before anyone signs in."""
    return str(request.app.state.tenant_code or get_settings().default_tenant)


def _tenant_id(session: Session, request: Request) -> int:
    code = default_tenant_code(request)
    tenant_id = tenant_by_code(session, request, code)
    if tenant_id is None:
        raise HTTPException(status_code=503, detail=f"租户 {code} 尚未初始化，请先运行 shequ seed "
                                                    f"(tenant {code} does not exist yet)")
    return tenant_id


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _credential_tenant(session: Session, request: Request) -> int | None:
    """The tenant of whoever the request's cookie or bearer token belongs to, if anyone.

    One deployment serves many subdistricts: a signed-in user always works in the tenant of
    their own account, whatever the deployment's default is.
    """
    user = iam.user_for_session(session=session, token=request.cookies.get(SESSION_COOKIE))
    if user is None:
        user = iam.user_for_token(session=session, token=bearer_token(request))
    return user.tenant_id if user else None


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request, bound to the signed-in user's tenant (or, before sign-in, the
    deployment's default tenant); commits when the handler returns without error, rolls back
    otherwise. Tests override it with their own session."""
    session = session_factory()()
    try:
        # nobody is signed in yet: no registry record is visible until _bind_user binds a scope
        bind_context(session, tenant_id=None, actor="anonymous", scope=Scope.nothing())
        tenant_id = _credential_tenant(session, request) or _tenant_id(session, request)
        bind_context(session, tenant_id=tenant_id, actor="anonymous")
        yield session
        session.commit()
    except BaseException:
        # the error page still shows who is signed in: keep the user's loaded state
        user = getattr(request.state, "user", None)
        if user is not None and user in session:
            session.expunge(user)
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def scenario_enabled(scenario_id: str) -> Callable[..., None]:
    """A dependency of every route of a scenario package: the pages and API of a scenario the
    tenant has switched off answer 404, as if it were not installed."""

    def check(session: SessionDep) -> None:
        settings = session.scalar(select(Tenant.settings).where(Tenant.id == session.info.get("tenant_id")))
        if scenario_id not in enabled_ids(settings or {}):
            raise HTTPException(status_code=404, detail=f"场景 {scenario_id} 未启用 (scenario switched off)")

    return check


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _bind_user(request: Request, session: Session, user: User) -> User:
    """The signed-in user acts through the session: their name goes to the change log, and
    their scope limits every query of the request (the one place where scopes are bound)."""
    scope = scope_of(session=session, user=user)
    bind_context(session, tenant_id=user.tenant_id, actor=user.username, scope=scope)
    request.state.user = user
    request.state.scope = scope
    request.state.tenant_settings = session.scalar(select(Tenant.settings).where(Tenant.id == user.tenant_id)) or {}
    return user


def optional_page_user(request: Request, session: SessionDep) -> User | None:
    user = iam.user_for_session(session=session, token=request.cookies.get(SESSION_COOKIE))
    if user is None:
        return None
    session.info.pop("token_permissions", None)  # a browser session: no token limit
    return _bind_user(request, session, user)


def page_user(request: Request, session: SessionDep) -> User:
    """The user of a page request (cookie session); otherwise a redirect to the login page."""
    user = optional_page_user(request, session)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return user


def api_user(request: Request, session: SessionDep) -> User:
    """The user of an API request (``Authorization: Bearer``); otherwise 401."""
    user = iam.user_for_token(session=session, token=bearer_token(request))
    if user is None:
        raise HTTPException(status_code=401, detail="需要有效的访问令牌 (a valid bearer token is required)",
                            headers={"WWW-Authenticate": "Bearer"})
    return _bind_user(request, session, user)


PageUser = Annotated[User, Depends(page_user)]
ApiUser = Annotated[User, Depends(api_user)]


def ensure_can(user: User, *permissions: str) -> User:
    """The one permission check: 403 unless the user's role (in their tenant's role_permission
    table) and, for the API, their token grant every one of ``permissions``."""
    for permission in permissions:
        if not iam.can(user, permission):
            raise HTTPException(status_code=403, detail=f"无权限 (permission {permission} required)")
    return user


def found(record: T | None, what: str, ident: object, *, user: User | None = None,
             permission: str = "") -> T:
    """The record a route names: 404 when it is missing or out of the user's scope (the same
    answer, so scope leaks nothing), and only then 403 when ``user`` lacks ``permission``."""
    if record is None:
        raise HTTPException(status_code=404, detail=f"{what} {ident} 不存在 (not found)")
    if user is not None and permission:
        ensure_can(user, permission)
    return record


def require(permission: str, *, api: bool) -> Callable[..., User]:
    """``ensure_can`` as a dependency of a page or an API route."""

    def check_page(user: PageUser) -> User:
        return ensure_can(user, permission)

    def check_api(user: ApiUser) -> User:
        return ensure_can(user, permission)

    return check_api if api else check_page


# --- rendering ---------------------------------------------------------------------------


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as shown on screen: Asia/Shanghai."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(SHANGHAI).strftime(fmt)


templates.env.filters["local"] = local_time


def lang_of(request: Request) -> str:
    return getattr(request.state, "lang", get_settings().language)


def _lang_url(request: Request, other: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*params, ("lang", other)])


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page with the context every template may use: lang, t, user, csrf, labels."""
    lang = lang_of(request)
    user = getattr(request.state, "user", None)

    def tr(key: str, **kw: Any) -> str:
        return t(key, lang, **kw)

    base = {
        "lang": lang,
        "t": tr,
        "user": user,
        "role_label": iam.role_label(user.role, lang) if user else "",
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "label": lambda group, value: kinds.label(group, value, lang),
        "kinds": kinds.KINDS,
        "can": lambda perm: iam.can(user, perm),
        "path": request.url.path,
        "query": request.url.query,
        "lang_url": _lang_url(request, "en" if lang.startswith("zh") else "zh-CN"),
        "menu": nav.menu(user, lang=lang, path=request.url.path,
                         tenant_settings=getattr(request.state, "tenant_settings", None)),
        "large_font": request.cookies.get(LARGE_FONT_COOKIE) == "1",
    }
    base.update(context)
    return templates.TemplateResponse(request, name, base, status_code=status_code)
