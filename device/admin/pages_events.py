"""Events (filterable, with a daily chart), the admin log, the status page and the audited relay test."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse
from starlette.routing import Route

from edgeface.errors import EdgefaceError

from .app import form_of, login_required, page, redirect, state
from .events_db import DECISIONS, EventFilter, EventsDB, chart

GATE_UNIT = "edgeface-gate.service"


def _filter(request) -> EventFilter:
    q = request.query_params
    f = EventFilter(q.get("person", "").strip()[:100], q.get("kind", "").strip()[:40],
                    q.get("since", "").strip()[:32], q.get("until", "").strip()[:32])
    for text in (f.since, f.until):
        if text:
            try:
                datetime.fromisoformat(text)
            except ValueError:
                raise HTTPException(400, f"{text!r} is not a date (YYYY-MM-DD)") from None
    return f


@login_required
async def events(request):
    s = state(request)
    f = _filter(request)
    rows = s.events.events(f)
    problem = s.events.problem
    days = s.events.daily_counts(f)
    admin_rows = EventsDB(s.cfg.admin.log).events(EventFilter(limit=50))
    return page(request, "events.html", {
        "events": rows, "problem": problem, "f": f, "kinds": s.events.kinds(), "chart": chart(days),
        "days": days, "faces": s.cfg.audit.save_faces, "admin_events": admin_rows})


@login_required
async def face(request):
    """A saved face crop of an event: only when ``[audit] save_faces`` is on."""
    s = state(request)
    if not s.cfg.audit.save_faces:
        raise HTTPException(404, "face images are not kept (audit.save_faces is off)")
    rows = [e for e in s.events.events(EventFilter(limit=1_000_000)) if e["id"] == request.path_params["eid"]]
    if not rows or not rows[0]["face"]:
        raise HTTPException(404, "no face image for that event")
    faces_dir = s.cfg.audit.faces_dir or s.cfg.audit.path.with_name(s.cfg.audit.path.name + ".faces")
    path = faces_dir / rows[0]["face"]
    if path.parent != faces_dir or not path.is_file():
        raise HTTPException(404, "no face image for that event")
    return FileResponse(path, media_type="image/png")


def systemd_status(unit: str = GATE_UNIT) -> dict[str, str]:
    """What systemd knows of the gate (its STATUS= line, state, start time); empty where there is no systemd."""
    exe = shutil.which("systemctl")
    if exe is None:
        return {}
    try:
        out = subprocess.run([exe, "show", unit, "--property=ActiveState,SubState,StatusText,ActiveEnterTimestamp"],
                             capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    info = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return {k: v for k, v in info.items() if v} if info.get("ActiveState") not in (None, "", "inactive") else info


def _age(wall: str | None) -> str:
    if not wall:
        return ""
    try:
        seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(wall)).total_seconds()
    except ValueError:
        return ""
    return _duration(seconds) + " ago"


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return (f"{d} d " if d else "") + (f"{h} h " if h or d else "") + f"{m} min {sec} s"


def status_facts(s) -> dict:
    from edgeface.gallery import Gallery

    facts: dict = {}
    db = s.events
    run = db.last(("started", "stopping"))
    cam = db.last(("started", "stopping", "camera_lost", "camera_reacquired"))
    facts["gate"] = ("never ran" if run is None else
                     f"running since {run['time'][:19].replace('T', ' ')} UTC ({_age(run['time'])[:-4]})" if run["kind"] == "started"
                     else f"stopped at {run['time'][:19].replace('T', ' ')} UTC ({run['detail'] or ''})")
    facts["camera"] = ("unknown" if cam is None else "lost" if cam["kind"] == "camera_lost" else
                       "ok" if cam["kind"] in ("started", "camera_reacquired") else "not running")
    last = db.last(tuple(k for k in ("started", "stopping", "granted", "denied", "unknown", "unlock", "lockout",
                                     "camera_lost", "camera_reacquired", "reloaded", "reload_failed", "error")))
    facts["last_event"] = f"{last['kind']} at {last['time'][:19].replace('T', ' ')} UTC ({_age(last['time'])})" if last else "none"
    decision = db.last(DECISIONS)
    facts["last_decision"] = (f"{decision['kind']} {decision['person'] or ''} "
                              f"{'' if decision['score'] is None else format(decision['score'], '.3f')} at "
                              f"{decision['time'][:19].replace('T', ' ')} UTC ({_age(decision['time'])})") if decision else "none yet"
    unlock = db.last(("unlock",))
    open_now = False
    if unlock and unlock["duration_s"]:
        end = datetime.fromisoformat(unlock["time"]).timestamp() + unlock["duration_s"]
        open_now = time.time() < end
    facts["relay"] = ("UNLOCKED (a pulse is running)" if open_now else "locked (off)") + (
        f"; last unlock {unlock['person'] or ''} at {unlock['time'][:19].replace('T', ' ')} UTC" if unlock else "")
    facts["audit_problem"] = db.problem
    try:
        g = Gallery.load(s.cfg.model.gallery)
        facts["gallery"] = f"{len(g)} people, {g.embedding_count} embeddings, version {g.version}"
    except EdgefaceError as exc:
        facts["gallery"] = f"cannot be read: {exc}"
    try:
        from edgeface.bundle import Bundle

        from edgeface.thresholds import choose_threshold

        bundle = Bundle.load(s.cfg.model.bundle)
        key = s.cfg.model.key or bundle.default_key()
        choice = choose_threshold(bundle, key, s.cfg.policy.threshold, refuse_lower=False)
        kind = "cosine" if bundle.meta.score_bounds == (-1.0, 1.0) else "logistic scorer"
        facts["model"] = f"{key} ({bundle.fingerprint(key)[:12]}) from {s.cfg.model.bundle}"
        facts["threshold"] = f"{kind} {choice.value:.4f} ({choice.source})"
    except EdgefaceError as exc:
        facts["model"] = f"cannot be loaded: {exc}"
        facts["threshold"] = "unknown"
    p = s.cfg.policy
    facts["policy"] = (f"{p.k} of {p.n} frames, margin {p.min_margin:g}, cooldown {p.cooldown_s:g} s, "
                       f"lockout after {p.lockout_unknown} unknown faces in {p.lockout_window_s:g} s")
    facts["systemd"] = systemd_status()
    facts["admin_uptime"] = _duration(time.monotonic() - s.started)
    return facts


@login_required
async def status(request):
    s = state(request)
    facts = await run_in_threadpool(status_facts, s)
    return page(request, "status.html", {"facts": facts, "relay_cfg": s.cfg.relay, "test_s": s.cfg.admin.relay_test_s})


def _pulse(s) -> float:
    """Open the configured relay, pulse it for ``relay_test_s``, wait for the end, release it; the measured length."""
    from ..relay import open_relay

    relay = open_relay(s.cfg.relay, pin_factory=s.pin_factory)
    try:
        relay.pulse(s.cfg.admin.relay_test_s)
        deadline = time.monotonic() + s.cfg.admin.relay_test_s + 2.0
        while relay.is_active and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        relay.close()
    on, off = relay.pulses[-1] if relay.pulses else (0.0, 0.0)
    return off - on


@login_required
async def relay_test(request):
    s = state(request)
    await form_of(request)
    user = request.state.session.user
    try:
        held = await run_in_threadpool(_pulse, s)
    except EdgefaceError as exc:
        s.audit("relay_test_failed", user, str(exc))
        return redirect(request, "/status", f"Relay test failed: {exc} (a running gate holds the relay: "
                                            "stop it for the test, systemctl stop edgeface-gate)")
    s.audit("relay_test", user, f"relay pulsed for {held:.2f} s")
    return redirect(request, "/status", f"Relay test: the door was unlocked for {held:.2f} s.")


def routes():
    return [Route("/events", events), Route("/events/{eid:int}/face", face), Route("/status", status),
            Route("/relay-test", relay_test, methods=["POST"])]
