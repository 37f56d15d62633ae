"""The context of a request that code below the web layer needs, and what no layer can take.

``RequestContextMiddleware`` sets the client address for the whole request: the audit log
(``shequ.core.iam.audit.REQUEST_IP``) stamps it on every row written while it is served. It
also refuses a NUL character in the path or query string with a 422 naming it: no text column
can hold one (PostgreSQL refuses it outright), so it could only end as a server error.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from shequ.core.iam.audit import REQUEST_IP

NUL_MESSAGE = "不能包含 NUL 字符（must not contain a NUL character）"


def _has_nul(scope: Scope) -> str | None:
    """Where a NUL character is in the request line: "path", "query" or None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or (b"%00" in query and b"\x00" in unquote_to_bytes(query)):
        return "query"
    return None


class RequestContextMiddleware:
    """Pure ASGI: sets the client address for the whole request, threads included
    (Starlette copies the context into the thread pool)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        where = _has_nul(scope)
        if where is not None and scope["type"] == "http":
            body = json.dumps({"detail": f"{where}: {NUL_MESSAGE}",
                               "errors": [{"field": where, "message": NUL_MESSAGE}]},
                              ensure_ascii=False).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"x-content-type-options", b"nosniff"),
                                    (b"cache-control", b"no-store"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        client = scope.get("client")
        token = REQUEST_IP.set(str(client[0])[:64] if client else "")
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_IP.reset(token)
