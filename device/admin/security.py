"""Security headers on every response, request bodies cut at a size limit, and error pages that never show a
traceback.

The page uses no JavaScript, no inline styles and no third-party resources, so the Content-Security-Policy
allows nothing but this origin's stylesheet and images. Every page but the static stylesheet is ``no-store``:
people's names, events and the status page are personal data and must not stay in a browser cache.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = (b"cache-control", b"no-store")


def header_dict(static: bool = False) -> dict[str, str]:
    """The same headers as a dict, for responses made outside the middleware (500 pages)."""
    out = {k.decode(): v.decode() for k, v in HEADERS}
    if not static:
        out[NO_STORE[0].decode()] = NO_STORE[1].decode()
    return out


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`HEADERS` (and no-store outside ``/static/``), replacing any the app set."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = list(HEADERS) + ([] if static else [NO_STORE])
                if self.hsts:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                names = {k for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = dict(message, headers=kept + extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    """A request body went past its route's limit: 413, and nothing more of it is read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request is too large: at most {limit / (1 << 20):.1f} MB.")
        self.limit = limit


class BodyLimit:
    """Pure ASGI middleware: a request body (with or without Content-Length: chunked ones too) may be at most
    ``limits[path]`` bytes, else ``default``. A declared length over it is refused before any byte is read; an
    undeclared one when the count passes it, as the app reads: :class:`BodyTooLarge` (an HTTPException, so the
    app's own 413 page answers) is raised from ``receive`` and nothing more is read from the connection. Starlette
    spools uploaded files to disk, so this also bounds what an upload can put there."""

    def __init__(self, app, default: int, limits: dict[str, int] | None = None):
        self.app = app
        self.default = int(default)
        self.limits = dict(limits or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope.get("path", ""), self.default)
        declared = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = limit + 1
        seen = 0

        async def limited():
            nonlocal seen
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
