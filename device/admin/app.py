"""The admin page's Starlette app: :func:`create_app` builds it from a gate config.

Every route but ``/login``, ``/healthz`` and ``/static`` needs a session (:func:`login_required`: GET redirects to
the login page, anything else answers 401); every POST but the login form needs the session's CSRF token
(:func:`form_of`). Pages are in :mod:`.pages_people`, :mod:`.pages_events` and :mod:`.pages_login`.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from edgeface.config import GateConfig

from ..events import Event
from .accounts import Accounts, PasswordChecks
from .auth import SESSION_COOKIE, LoginLimiter, Session, Sessions, same
from .enrollment import Enroller
from .events_db import EventsDB
from .localtime import LocalClock
from .security import BodyLimit, SecurityHeaders, header_dict

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
#: the largest request body of any form but the photo upload
FORM_MAX_BYTES = 1 << 20
#: what a photo upload's form may add to the photo (the other fields, the multipart framing)
UPLOAD_FORM_BYTES = 64 << 10


@dataclass
class AdminState:
    """What every request handler shares: the config, accounts, sessions, rate limits, models and logs."""

    cfg: GateConfig
    accounts: Accounts
    sessions: Sessions
    limiter: LoginLimiter
    checks: PasswordChecks
    enroller: Enroller
    events: EventsDB
    admin_log: object
    templates: Jinja2Templates
    clock: LocalClock = field(default_factory=LocalClock)  # the door's local time ([access] timezone)
    secure_cookies: bool = True
    pin_factory: object = None
    started: float = field(default_factory=time.monotonic)
    started_wall: str = field(default_factory=lambda: Event("x", 0.0).wall)

    def audit(self, kind: str, admin: str, detail: str, person: str | None = None,
              person_id: str | None = None) -> None:
        """One admin action in the admin log, with the admin's name (never raises: AuditLog.record)."""
        self.admin_log.record(Event(kind, time.monotonic() - self.started, person=person, person_id=person_id,
                                    detail=f"by {admin}: {detail}"))


def state(request) -> AdminState:
    return request.app.state.admin


def session_of(request) -> Session | None:
    return state(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def address(request) -> str:
    return request.client.host if request.client else "?"


def login_required(handler):
    @functools.wraps(handler)
    async def wrapped(request):
        session = session_of(request)
        if session is None:
            if request.method in ("GET", "HEAD"):
                return RedirectResponse("/login", status_code=303)
            return page(request, "message.html", {"title": "Not logged in", "message": "Log in first."}, 401)
        request.state.session = session
        return await handler(request)
    return wrapped


async def form_of(request, max_part_size: int = 1 << 20):
    """The POSTed form, after checking the session's CSRF token (403 without a valid one)."""
    from starlette.formparsers import MultiPartException

    try:
        form = await request.form(max_part_size=max_part_size, max_files=2, max_fields=20)
    except MultiPartException as exc:
        raise HTTPException(400, f"the form could not be read: {exc.message}") from None
    if not same(form.get("csrf"), request.state.session.csrf):
        raise HTTPException(403, "the form has expired or did not come from this page: reload it and try again")
    return form


def page(request, name: str, context: dict | None = None, status_code: int = 200):
    session = getattr(request.state, "session", None) if hasattr(request, "state") else None
    ctx = {"session": session, "csrf": session.csrf if session else "", "user": session.user if session else None}
    ctx.update(context or {})
    if session is not None and "flash" not in ctx:
        ctx["flash"] = session.pending.pop("_flash", None)
    return state(request).templates.TemplateResponse(request, name, ctx, status_code=status_code)


def redirect(request, to: str, flash: str | None = None) -> RedirectResponse:
    if flash:
        request.state.session.pending["_flash"] = flash
    return RedirectResponse(to, status_code=303)


async def http_error(request, exc: HTTPException):
    if exc.status_code in (301, 302, 303, 307, 308):
        return RedirectResponse(exc.headers["location"], status_code=exc.status_code)
    return page(request, "message.html", {"title": f"Error {exc.status_code}", "message": exc.detail},
                exc.status_code)


async def server_error(request, exc: Exception):
    """No traceback, no exception text: a fixed page; the details go to the journal."""
    log.error("admin page: %s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return HTMLResponse("<!doctype html><title>Error</title><h1>Something went wrong</h1>"
                        "<p>The change was not made. The details are in the system log.</p>",
                        status_code=500, headers=header_dict())


async def healthz(request):
    return PlainTextResponse("ok")


async def home(request):
    return RedirectResponse("/people" if session_of(request) else "/login", status_code=303)


def create_app(cfg: GateConfig, *, secure_cookies: bool = True, hsts: bool = False,
               pin_factory=None, admin_log=None) -> Starlette:
    """The admin app for ``cfg`` (a :class:`GateConfig` with its ``[admin]`` section)."""
    from ..audit import AuditLog
    from . import pages_events, pages_login, pages_people

    a = cfg.admin
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    accounts = Accounts(a.accounts)
    admin = AdminState(
        cfg=cfg, accounts=accounts, sessions=Sessions(a.session_lifetime_s),
        limiter=LoginLimiter(a.max_failed_logins, a.login_window_s, db=a.log,
                             max_per_address=a.max_failed_logins_per_address),
        checks=PasswordChecks(accounts), enroller=Enroller(cfg),
        events=EventsDB(cfg.audit.path), admin_log=admin_log or AuditLog(a.log), templates=templates,
        clock=LocalClock(cfg.access.timezone), secure_cookies=secure_cookies, pin_factory=pin_factory)
    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        *pages_login.routes(),
        *pages_people.routes(),
        *pages_events.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # every body is bounded as it is read (chunked ones too): a photo upload by [admin] upload_max_bytes plus the
    # form around it, anything else by FORM_MAX_BYTES
    body_limits = {"/people/add": a.upload_max_bytes + UPLOAD_FORM_BYTES}
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, hsts=hsts),
                                               Middleware(BodyLimit, default=FORM_MAX_BYTES, limits=body_limits)],
                    exception_handlers={HTTPException: http_error, 500: server_error, Exception: server_error})
    app.state.admin = admin
    return app
