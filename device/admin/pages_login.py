"""``/login`` and ``/logout``: argon2-verified passwords (a bounded number at a time:
:class:`~.accounts.PasswordChecks`), rate-limited per user name and per address before any hash
(:class:`~.auth.LoginLimiter`), audited."""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from .app import address, form_of, login_required, page, session_of, state
from .auth import LOGIN_COOKIE, LOGIN_COOKIE_S, SESSION_COOKIE, same

log = logging.getLogger(__name__)


def _cookie(response, name: str, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict")


def _login_page(request, message: str = "", status_code: int = 200, user: str = ""):
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", {"login_csrf": token, "message": message, "username": user}, status_code)
    _cookie(response, LOGIN_COOKIE, token, LOGIN_COOKIE_S, state(request).secure_cookies)
    return response


async def login_form(request):
    if session_of(request):
        return page(request, "message.html", {"title": "Logged in", "message": "You are logged in.",
                                              "link": "/people"})
    return _login_page(request)


async def login(request):
    s = state(request)
    form = await request.form(max_fields=10, max_files=0)
    if not same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        raise HTTPException(403, "the login form has expired: reload the page and try again")
    user = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    where = address(request)
    wait, ticket = s.limiter.begin(user, where)  # counted as a failure until the password proves right
    if wait > 0:
        s.audit("admin_login_refused", user or "?", f"rate-limited from {where}")
        return _login_page(request, f"Too many failed logins: try again in {int(wait) + 1} s.", 429, user)
    ok = await run_in_threadpool(s.checks.verify, user, password)
    if ok is None:  # too many logins in flight: nothing was checked, so nothing is counted
        s.limiter.succeeded(user, where, ticket)
        s.audit("admin_login_refused", user or "?", f"busy (too many logins at once) from {where}")
        response = _login_page(request, "Too many logins at once: try again in a few seconds.", 503, user)
        response.headers["retry-after"] = "5"
        return response
    if not ok:
        s.audit("admin_login_failed", user or "?", f"wrong name or password from {where}")
        return _login_page(request, "Wrong name or password.", 401, user)
    s.limiter.succeeded(user, where, ticket)
    try:  # a hash with older (heavier) parameters is replaced now that the password is known
        await run_in_threadpool(s.accounts.upgrade, user, password)
    except Exception as exc:  # a read-only accounts file: the login stands, the old hash stays
        log.warning("admin login: could not upgrade the password hash of %s: %s", user, exc)
    session = s.sessions.create(user)
    s.audit("admin_login", user, f"logged in from {where}")
    response = RedirectResponse("/people", status_code=303)
    _cookie(response, SESSION_COOKIE, session.token, int(s.sessions.lifetime_s), s.secure_cookies)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@login_required
async def logout(request):
    await form_of(request)
    s = state(request)
    s.sessions.end(request.state.session.token)
    s.audit("admin_logout", request.state.session.user, f"logged out from {address(request)}")
    request.state.session = None
    response = _login_page(request, "You are logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=s.secure_cookies, httponly=True, samesite="strict")
    return response


def routes():
    return [Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"])]
