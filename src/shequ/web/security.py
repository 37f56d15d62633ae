"""Browser protections: security headers, the CSRF double-submit token, and the language cookie.

The CSRF token lives in a cookie and must come back in a form field (``csrf_token``) or an
``X-CSRF-Token`` header (htmx) on every unsafe request of a cookie-authenticated page. The
API authenticates with bearer tokens only, which a foreign page cannot send, so it needs none.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from shequ.config import get_settings
from shequ.web.i18n import normalise_lang

CSRF_COOKIE = "shequ_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LANG_COOKIE = "shequ_lang"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(self)",
}


def secure_cookies() -> bool:
    """Cookies only over HTTPS in production; development and test serve plain http://127.0.0.1."""
    return get_settings().env == "production"


class BrowserMiddleware(BaseHTTPMiddleware):
    """Sets request.state.lang and .csrf_token; adds security headers and cookies to responses."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        asked = normalise_lang(request.query_params.get("lang"))
        lang = asked or normalise_lang(request.cookies.get(LANG_COOKIE)) or get_settings().language
        request.state.lang = lang
        csrf = request.cookies.get(CSRF_COOKIE) or ""
        new_csrf = not csrf
        if new_csrf:
            csrf = secrets.token_urlsafe(32)
        request.state.csrf_token = csrf
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        secure = secure_cookies()
        if new_csrf and not request.url.path.startswith(("/api/", "/static/")):
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure,
                                path="/")
        if asked:
            response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, samesite="lax",
                                secure=secure, path="/")
        return response


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe page request whose token does not match the cookie's (403)."""
    if request.method not in UNSAFE:
        return
    expected = request.cookies.get(CSRF_COOKIE) or ""
    sent = request.headers.get(CSRF_HEADER) or ""
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else ""
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(status_code=403, detail="csrf")
