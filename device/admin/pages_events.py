"""Who came in today, events (filterable, with a daily chart), the admin log, the status page and the audited
relay test.

Times are the door's local time (:mod:`.localtime`: the ``[access] timezone``). An event that names nobody (an
``unknown`` face, a ``denied`` ambiguous one) shows who came closest, from the audit database's ``candidates``.
A failed face that the policy recognised as an earlier attempt ("same face as an earlier attempt (not counted
again)") is folded into the row above it, with how many times and until when: a visitor stepping in and out of
the camera's view is one line, not a screenful."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import date, datetime, timedelta, timezone

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse
from starlette.routing import Route

from edgeface.errors import EdgefaceError

from .app import form_of, login_required, page, redirect, state
from .events_db import DECISIONS, EventFilter, EventsDB, chart

GATE_UNIT = "edgeface-gate.service"


#: the policy's words for a failed face it has seen fail before (device/policy.py)
REPEAT = "(not counted again)"
#: decisions that are a failed attempt
FAILED = ("unknown", "denied")


#: the days a filter may name (the audit log holds no earlier times; later ones overflow in zones ahead of UTC)
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # the first and last days cannot be turned into UTC in every zone
        raise HTTPException(400, f"{text!r} is outside {FIRST_DAY} to {LAST_DAY}")
    return day


def _filter(request, clock) -> tuple[EventFilter, dict]:
    """(the query, in UTC instants; the form's values, local days as typed)."""
    q = request.query_params
    form = {"person": q.get("person", "").strip()[:100], "kind": q.get("kind", "").strip()[:40],
            "since": q.get("since", "").strip()[:32], "until": q.get("until", "").strip()[:32]}
    since, until = _day(form["since"]), _day(form["until"])
    f = EventFilter(form["person"], form["kind"], start=clock.start_utc(since) if since else "",
                    end=clock.end_utc(until) if until else "")
    return f, form


def closest(e: dict) -> list[dict]:
    """Who came closest to a face that was let in for nobody: ``[{"name", "score"}, ...]``, best first."""
    if e.get("person") or e["kind"] not in (*FAILED, "no_decision"):
        return []
    return [{"name": c.get("person") or c.get("person_id") or "?",
             "score": "" if c.get("score") is None else f"{float(c['score']):.3f}"} for c in e.get("candidates") or ()]


def decorate(rows: list[dict], clock) -> list[dict]:
    for e in rows:
        e["local"] = clock.show(e["time"])
        e["closest"] = closest(e)
        e["repeats"], e["repeat_last"] = 0, ""
    return rows


def is_repeat(e: dict) -> bool:
    return e["kind"] in FAILED and REPEAT in (e.get("detail") or "")


def _attempt_before(out: list[dict]) -> dict | None:
    """The last failed attempt in ``out``, looking past rows that are no one's face (the relay's ``unlock`` record
    of an earlier grant, written when its pulse ends, a reload, the camera...) but not past a granted face."""
    for r in reversed(out):
        if r["kind"] in FAILED:
            return r
        if r["kind"] == "granted":
            return None
    return None


def collapse(rows: list[dict]) -> list[dict]:
    """Rows newest first; a run of repeated failed faces is folded into the failed attempt just before it (in
    time; rows that are no one's face in between do not count): that row gets ``repeats`` (how many) and ``repeat_last`` (the local time of the last one)."""
    out: list[dict] = []
    for e in reversed(rows):  # oldest first
        base = _attempt_before(out)
        if is_repeat(e) and base is not None:
            base["repeats"] += 1
            base["repeat_last"] = e["local"]
            continue
        out.append(e)
    return out[::-1]


@login_required
async def events(request):
    s = state(request)
    f, form = _filter(request, s.clock)
    rows = collapse(decorate(s.events.events(f), s.clock))
    problem = s.events.problem
    days = s.events.daily_counts(f, clock=s.clock)
    admin_rows = decorate(EventsDB(s.cfg.admin.log).events(EventFilter(limit=50)), s.clock)
    return page(request, "events.html", {
        "events": rows, "problem": problem, "f": form, "kinds": s.events.kinds(), "chart": chart(days),
        "days": days, "faces": s.cfg.audit.save_faces, "admin_events": admin_rows, "zone": s.clock.zone})


def came_in(rows: list[dict]) -> list[dict]:
    """Per person the door opened for (``unlock`` events, oldest first): first and last time, how often."""
    people: dict[str, dict] = {}
    for e in sorted(rows, key=lambda e: e["time"]):
        key = e.get("person_id") or e.get("person")
        if not key:
            continue
        p = people.setdefault(key, {"name": e.get("person") or key, "id": e.get("person_id") or "",
                                    "first": e["local"], "last": e["local"], "times": 0})
        p["name"] = e.get("person") or p["name"]  # the name as of the latest visit (a rename)
        p["last"] = e["local"]
        p["times"] += 1
    return list(people.values())


@login_required
async def today(request):
    """Who came in today (or on ``?day=YYYY-MM-DD``), in the door's time zone."""
    s = state(request)
    clock = s.clock
    day = _day(request.query_params.get("day", "").strip()[:10]) or clock.today()
    window = dict(start=clock.start_utc(day), end=clock.end_utc(day), limit=100_000)
    rows = s.events.events(EventFilter(**window))  # one query for the day: its unlocks and its failed attempts
    problem = s.events.problem
    unlocks = decorate([e for e in rows if e["kind"] == "unlock"], clock)
    failed = [e for e in rows if e["kind"] in FAILED and not e.get("person")]
    attempts = sum(1 for e in failed if not is_repeat(e))
    return page(request, "today.html", {
        "people": came_in(unlocks), "unlocks": len(unlocks), "day": day, "is_today": day == clock.today(),
        "previous": (day - timedelta(days=1)).isoformat(), "next": (day + timedelta(days=1)).isoformat(),
        "refused": attempts, "repeats": len(failed) - attempts, "zone": clock.zone, "problem": problem})


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
    when = s.clock.show  # the door's local time
    run = db.last(("started", "stopping"))
    cam = db.last(("started", "stopping", "camera_lost", "camera_reacquired"))
    facts["gate"] = ("never ran" if run is None else
                     f"running since {when(run['time'])} ({_age(run['time'])[:-4]})" if run["kind"] == "started"
                     else f"stopped at {when(run['time'])} ({run['detail'] or ''})")
    facts["camera"] = ("unknown" if cam is None else "lost" if cam["kind"] == "camera_lost" else
                       "ok" if cam["kind"] in ("started", "camera_reacquired") else "not running")
    last = db.last(tuple(k for k in ("started", "stopping", "granted", "denied", "unknown", "unlock", "lockout",
                                     "camera_lost", "camera_reacquired", "reloaded", "reload_failed", "error")))
    facts["last_event"] = f"{last['kind']} at {when(last['time'])} ({_age(last['time'])})" if last else "none"
    decision = db.last(DECISIONS)
    facts["last_decision"] = (f"{decision['kind']} {decision['person'] or ''} "
                              f"{'' if decision['score'] is None else format(decision['score'], '.3f')} at "
                              f"{when(decision['time'])} ({_age(decision['time'])})") if decision else "none yet"
    unlock = db.last(("unlock",))
    open_now = False
    if unlock and unlock["duration_s"]:
        end = datetime.fromisoformat(unlock["time"]).timestamp() + unlock["duration_s"]
        open_now = time.time() < end
    facts["relay"] = ("UNLOCKED (a pulse is running)" if open_now else "locked (off)") + (
        f"; last unlock {unlock['person'] or ''} at {when(unlock['time'])}" if unlock else "")
    facts["audit_problem"] = db.problem
    try:
        g = Gallery.load(s.cfg.model.gallery)
        facts["gallery"] = f"{len(g)} people, {g.embedding_count} embeddings, version {g.version}"
        from edgeface.revocations import effective

        live = effective(s.cfg.model.gallery, g)
        if len(live) != len(g):  # a signed door with local revocations: what the door runs
            facts["gallery"] += f"; {len(g) - len(live)} revoked on this door, {len(live)} let in"
    except EdgefaceError as exc:
        facts["gallery"] = f"cannot be read: {exc}"
    fresh = db.last(("gallery_stale", "gallery_fresh"))  # a signed door's freshness guard (issue 22)
    if fresh is not None and fresh["kind"] == "gallery_stale":
        facts["gallery"] += f"; STALE since {fresh['time'][:19].replace('T', ' ')} UTC: {fresh['detail'] or ''}"
    try:
        rec = s.enroller.recognizer
        th = rec.thresholds()
        kind = "cosine" if rec.scorer.kind == "cosine" else "logistic scorer"
        facts["model"] = f"{rec.key} ({rec.fingerprint[:12]}) from {s.cfg.model.bundle}"
        facts["threshold"] = f"{kind} {th.door.value:.4f} ({th.door.source}); during a lockout {th.strict:.4f}"
    except EdgefaceError as exc:
        facts["model"] = f"cannot be loaded: {exc}"
        facts["threshold"] = "unknown"
    p = s.cfg.policy
    facts["policy"] = (f"decided on {p.k} usable frames, fused over the last {p.n}; ambiguous within "
                       f"{p.margin_decades:g} decade(s) of FAR; cooldown {p.cooldown_s:g} s; lockout after "
                       f"{p.lockout_unknown} failed faces in {p.lockout_window_s:g} s")
    facts["systemd"] = systemd_status()
    facts["admin_uptime"] = _duration(time.monotonic() - s.started)
    facts["zone"] = s.clock.zone
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
    return [Route("/today", today), Route("/events", events), Route("/events/{eid:int}/face", face), Route("/status", status),
            Route("/relay-test", relay_test, methods=["POST"])]
