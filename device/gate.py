"""The door daemon loop: frames -> pipeline -> policy -> relay, audit, journald lines and sd_notify.

Fail secure, in this order of importance:

* the relay is driven off at start (before anything else loads), on SIGTERM/SIGINT (in the signal handler
  itself, then the loop stops), on any exception (``finally``), and at interpreter exit (``atexit``);
* only a ``granted`` decision of :mod:`edgeface.device.policy` energises it, for ``relay.pulse_s`` on the
  monotonic clock (the :class:`~edgeface.device.relay.Relay` caps it at the hard maximum); its ``unlock`` event
  is emitted when the door locks again, with the time it really stayed unlocked (a stop, a SIGTERM or an error
  cuts a pulse short: the event says so, never the planned length);
* a SIGHUP reload builds the new config, model and gallery completely before swapping them in; a bad new file
  keeps the old runtime and logs ``reload_failed`` with the reason;
* ``READY=1`` only after the relay, model, gallery and camera are up and one warm-up inference ran on a real
  frame; ``WATCHDOG=1`` only while frames arrive and inferences complete, so a stalled camera or pipeline lets
  systemd's watchdog restart the service.

Frames are processed at most ``policy.max_fps`` per second; frames older than ``policy.max_frame_age_s`` when
they reach the loop are dropped (a backlog must not decide on the past). In simulation (``simulated=True``)
the clock is the frames' own timestamps (video time), nothing is stale, and a pulse waits for the previous one
to end so each MockPin pulse has exactly the configured length.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import signal
import sys
import threading
import time
from collections import deque
from typing import Callable, TextIO

from edgeface.errors import EdgefaceError
from edgeface.fileutil import file_version

from .camera import EndOfStream
from .events import Event
from .pipeline import FrameResult, Runtime
from .policy import Decision, Policy, Sighting, quality_weight
from .run_summary import RunSummary

log = logging.getLogger(__name__)

EX_OK = 0
EX_FAILURE = 1
#: this many consecutive failing frames is not a glitch: exit non-zero and let systemd restart the service
MAX_CONSECUTIVE_ERRORS = 20
#: how often STATUS= is refreshed without a new event
STATUS_EVERY_S = 5.0
#: how often the gallery file is looked at: a new version (admin page, ``edgeface people``) reloads like SIGHUP
GALLERY_CHECK_S = 1.0


def _gallery_path(runtime):
    """The gallery file the runtime was loaded from (None for a runtime without a model, e.g. door inputs only)."""
    model = getattr(runtime.config, "model", None)
    return getattr(model, "gallery", None)


def gallery_files_version(path) -> tuple | None:
    """The version of the gallery file and of its local revocations (``GALLERY.revoked``: a removal on a door
    that runs a signed gallery, :mod:`edgeface.revocations`); None when the gallery cannot be stat'ed."""
    from edgeface.revocations import revoked_path

    version = file_version(path)
    return None if version is None else (version, file_version(revoked_path(path)))


class NullAudit:
    """Stands in when no audit log is configured (simulation) or it could not be opened at all."""

    def record(self, event, face_crop=None) -> None:
        return None

    def close(self) -> None:
        return None


class NullNotifier:
    watchdog_interval_s = None

    def ready(self, status=None): return False
    def status(self, text): return False
    def watchdog(self): return False
    def reloading(self): return False
    def stopping(self): return False
    def close(self): return None


class Gate:
    """One gate run. ``camera`` is anything with ``open()``, ``read() -> Frame | None`` (raising
    :class:`EndOfStream` at the end of a replay) and ``close()``: a :class:`WatchedCamera` in the daemon, a
    bare replay camera in simulation. ``reload`` builds a new :class:`Runtime` (or raises) on SIGHUP."""

    def __init__(self, runtime: Runtime, camera, relay, *, audit=None, notifier=None,
                 reload: Callable[[], Runtime] | None = None, json_out: TextIO | None = None,
                 log_out: TextIO | None = sys.stderr, simulated: bool = False, finish_pulse_at_end: bool = False,
                 clock: Callable[[], float] = time.monotonic, access=None, freshness=None,
                 gallery_loader: Callable | None = None) -> None:
        self.runtime = runtime
        self.camera = camera
        self.relay = relay
        self.audit = audit or NullAudit()
        self.notifier = notifier or NullNotifier()
        self.reload_fn = reload
        self.json_out = json_out
        self.log_out = log_out
        self.simulated = simulated
        #: a replay that simply ended lets the last pulse run its course (simulation); the daemon never waits
        self.finish_pulse_at_end = finish_pulse_at_end or simulated
        self.clock = clock
        recognizer = getattr(runtime, "recognizer", None)  # None: a gate of door inputs only (no camera, no model)
        self.policy = Policy(runtime.params, getattr(runtime, "matcher", None), getattr(recognizer, "scorer", None))
        #: the access hook (edgeface.device.access.decide.AccessControl) or None: 1:N decisions as they are
        self.access = access
        #: a signed door's freshness guard (edgeface.device.fleet.freshness.Freshness) or None: what a stale
        #: gallery still lets in
        self.freshness = freshness
        self.events: deque[Event] = deque(maxlen=1000)  # the most recent events, for tests and STATUS
        self.stats = {"frames": 0, "processed": 0, "stale": 0, "skipped": 0, "errors": 0, "unlocks": 0}
        self.latencies_ms: deque[float] = deque(maxlen=1000)
        #: the run summary (frames, latency, stage medians, decisions): at the end, and every summary_every_min
        self.summary = RunSummary()
        self._last_summary = clock()
        self.ready = False
        self._stop = threading.Event()
        self._stop_reason = ""
        self._reload_requested = threading.Event()
        self._reload_from_watch = False  # the pending reload was requested by the gallery file watcher
        #: a signed door's light reload of the gallery alone (verify, subtract local revocations), used when
        #: only GALLERY.revoked changed: ``loader(runtime) -> Gallery`` (set by build_gate), else None
        self.gallery_loader = gallery_loader
        self._t0 = 0.0 if simulated else clock()
        self._now = 0.0
        self._last_processed: float | None = None
        self._last_progress: float | None = None
        self._last_watchdog: float | None = None
        self._last_status = float("-inf")
        self._rate: deque[float] = deque(maxlen=64)
        self._last_event: Event | None = None
        self._errors_in_row = 0
        self._gallery_version = gallery_files_version(_gallery_path(runtime))
        self._gallery_checked = clock()
        #: events and verified galleries handed in by other threads (the fleet link), taken by the loop
        self._mailbox: queue.SimpleQueue = queue.SimpleQueue()
        #: grants whose pulse has not ended yet: (decision, event time, monotonic time of the pulse call, planned s)
        self._unlocks: list[tuple] = []

    # -- control (thread- and signal-safe) ------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop the loop and drive the relay off now (safe from a signal handler: the relay lock is an RLock)."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()
        try:
            self.relay.off()
        except Exception:  # off() never raises by contract; a signal handler must not either
            pass

    def request_reload(self) -> None:
        self._reload_requested.set()

    def post_event(self, kind: str, detail: str) -> None:
        """Have the loop emit (log, audit) an event for another thread; never blocks."""
        self._mailbox.put(("event", kind, detail))

    def offer_gallery(self, gallery, detail: str, files_version: tuple | None = None) -> None:
        """Have the loop swap in a verified, installed gallery (:meth:`Runtime.with_gallery`, the one way a
        gallery goes live: its matcher and access rules come from the running model). ``files_version``: the
        :func:`gallery_files_version` the gallery was read at (a local revocation written later still reloads)."""
        self._mailbox.put(("gallery", (gallery, files_version), detail))

    def _take_mail(self) -> None:
        while True:
            try:
                what, item, detail = self._mailbox.get_nowait()
            except queue.Empty:
                return
            if what == "event":
                self._emit(item, self._t(), detail=detail)
                continue
            gallery, files_version = item
            try:  # a SIGHUP may have brought another model meanwhile: refused, the running gallery stays
                new = self.runtime.with_gallery(gallery)
            except Exception as exc:
                self._emit("gallery_refused", self._t(), detail=f"{detail}: {type(exc).__name__}: {exc}")
                continue
            self._apply(new)
            self._gallery_version = files_version or gallery_files_version(_gallery_path(new))
            if self._reload_from_watch:  # the watcher saw this very install: nothing left to reload
                self._reload_requested.clear()
                self._reload_from_watch = False
            self._emit("gallery_installed", self._t(), detail=detail)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- run --------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, loop until stopped or the replay ends, shut down. Returns the process exit code."""
        restore = self._install_signals()
        atexit.register(self._force_off)
        code = EX_FAILURE
        try:
            self.relay.off()
            if self._start():
                self._loop()
            code = EX_OK
        except KeyboardInterrupt:
            code = EX_OK
        except EdgefaceError as exc:  # an expected failure (a camera or file that cannot be read): one line
            self.relay.off()
            log.error("gate failed: %s", exc)
            self._emit("error", self._t(), detail=f"{type(exc).__name__}: {exc}")
            code = EX_FAILURE
        except Exception as exc:
            self.relay.off()
            log.exception("gate failed")
            self._emit("error", self._t(), detail=f"{type(exc).__name__}: {exc}")
            code = EX_FAILURE
        finally:
            self._shutdown()
            restore()
            atexit.unregister(self._force_off)
        return code

    def _start(self) -> bool:
        """Open the camera, wait for a first frame, warm up on it, then READY=1. False if stopped first."""
        self.camera.open()
        while not self._stop.is_set():
            self._take_mail()
            self._check_reload(ready=False)
            frame = self._read()
            if frame is None:
                continue
            warm_ms = self.runtime.recognizer.warm_up(frame.image)
            self.ready = True
            self._emit("started", self._t(frame.t), latency_ms=warm_ms, detail=self.runtime.describe())
            self.notifier.ready(self._status_text())
            self._handle(frame)
            return True
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._watch_gallery()
            self._take_mail()
            self._check_reload(ready=True)
            frame = self._read()
            if frame is not None:
                self._handle(frame)
            self._poll_access()
            self._settle_unlocks()
            self._heartbeat()

    def _read(self):
        try:
            frame = self.camera.read()
        except EndOfStream:
            self._stop_reason = self._stop_reason or "end of input"
            self._stop.set()
            return None
        if frame is not None:
            self.stats["frames"] += 1
        return frame

    # -- one frame --------------------------------------------------------------------------------------
    def _handle(self, frame) -> None:
        now = frame.t if self.simulated else self.clock()
        self._now = now
        if not self.simulated and now - frame.t > self.runtime.config.policy.max_frame_age_s:
            self.stats["stale"] += 1
            return
        min_dt = 1.0 / self.runtime.config.policy.max_fps
        if self._last_processed is not None and frame.t - self._last_processed < min_dt - 1e-9:
            self.stats["skipped"] += 1
            return
        self._last_processed = frame.t
        t_frame = time.perf_counter()
        try:
            result = self.runtime.recognizer.observe(frame.image)
            t_policy = time.perf_counter()
            decisions = self.policy.observe(frame.t, _sighting(result))
            result.stages["match"] = (time.perf_counter() - t_policy) * 1000.0  # fuse, match, decide
        except Exception as exc:
            self._frame_error(frame, exc)
            return
        self._errors_in_row = 0
        self.stats["processed"] += 1
        self.latencies_ms.append(result.latency_ms)
        self._rate.append(now)
        self._last_progress = self.clock()
        if self.access is not None:
            decisions = self.access.decide(frame.t, result, decisions, self.runtime, self.policy.locked_out,
                                           self.policy.fused)
        self.summary.frame(result, (time.perf_counter() - t_frame) * 1000.0)  # frame -> decision
        for d in decisions:
            self._act(d, result, frame.t)

    def _frame_error(self, frame, exc: Exception) -> None:
        self.relay.off()
        self.stats["errors"] += 1
        self._errors_in_row += 1
        self._emit("error", self._t(frame.t), detail=f"frame {frame.index}: {type(exc).__name__}: {exc}")
        if self._errors_in_row >= MAX_CONSECUTIVE_ERRORS:
            raise EdgefaceError(f"{self._errors_in_row} frames in a row failed; last: {exc}") from exc

    def _poll_access(self) -> None:
        if self.access is not None:
            now = self._now if self.simulated else self.clock()
            for d in self.access.poll(now, self.runtime, self.policy.locked_out):
                self._act(d, None, now)

    def _act(self, d: Decision, result: FrameResult | None, t: float) -> None:
        if d.kind == "granted" and self.freshness is not None:  # a stale signed gallery: its stale_mode decides
            d = self.freshness.screen(d, self.runtime)
        crop = result.crop if result is not None and d.kind in ("granted", "denied", "unknown") else None
        latency = result.latency_ms if result is not None and d.kind != "no_decision" else None
        self._emit(d.kind, self._t(d.t), person_id=d.person_id, person=d.person, score=d.score, margin=d.margin,
                   latency_ms=latency, detail=d.detail, crop=crop, candidates=d.candidates, rule=d.rule)
        if d.kind not in ("granted", "exit_request"):  # a request-to-exit button pulses too
            return
        pulse_s = self.runtime.config.relay.pulse_s
        if self.simulated:
            self._wait_relay_idle(pulse_s + 1.0)
            self._settle_unlocks()
        held = self.relay.pulse(pulse_s)
        self.stats["unlocks"] += 1
        self._unlocks.append((d, self._t(d.t), time.monotonic(), held))

    def _settle_unlocks(self, force: bool = False) -> None:
        """Emit the ``unlock`` of every grant whose pulse has ended (all of them with ``force``, after the relay
        was driven off), with how long the door really stayed unlocked from that grant on (the relay's own record
        of each pulse, monotonic)."""
        if not self._unlocks or (self.relay.is_active and not force):
            return
        pending, self._unlocks = self._unlocks, []
        pulses = list(getattr(self.relay, "pulses", ()))
        for d, t, called, planned in pending:
            on_off = next(((on, off) for on, off in reversed(pulses) if on <= called + 1e-3), None)
            duration = 0.0 if on_off is None or planned <= 0 else max(0.0, on_off[1] - max(on_off[0], called))
            detail = None
            if duration < planned - 0.05:
                detail = f"cut short after {duration:.2f} s of {planned:.2f} s ({self._stop_reason or 'relay off'})"
            self._emit("unlock", t, person_id=d.person_id, person=d.person, score=d.score, duration_s=duration,
                       detail=detail)

    def _wait_relay_idle(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while self.relay.is_active and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.005)

    # -- reload -----------------------------------------------------------------------------------------
    def _check_reload(self, ready: bool) -> None:
        if not self._reload_requested.is_set():
            return
        self._reload_requested.clear()
        self._reload_from_watch = False
        self._gallery_version = gallery_files_version(self.runtime.config.model.gallery)  # this version is being tried
        if ready:
            self.notifier.reloading()
        t = self._t()
        try:
            if self.reload_fn is None:
                raise EdgefaceError("this gate has nothing to reload from (no config file)")
            new = self.reload_fn()
            if ready:
                new.recognizer.warm_up()
        except Exception as exc:
            self._emit("reload_failed", t, detail=f"kept the running config: {type(exc).__name__}: {exc}")
        else:
            self._apply(new)
            self._emit("reloaded", t, detail=new.describe())
        if ready:
            self.notifier.ready(self._status_text())

    def _watch_gallery(self) -> None:
        """Request a reload when the gallery file is another version than the last one seen (once per version:
        a bad new file logs one reload_failed and the gate keeps the last good gallery)."""
        now = self.clock()
        if self.reload_fn is None or now - self._gallery_checked < GALLERY_CHECK_S:
            return
        self._gallery_checked = now
        version = gallery_files_version(_gallery_path(self.runtime))
        if version is not None and version != self._gallery_version:
            only_revocations = self._gallery_version is not None and version[0] == self._gallery_version[0]
            self._gallery_version = version
            if only_revocations and self.gallery_loader is not None:
                self._reload_gallery()
            else:
                self._reload_from_watch = True
                self.request_reload()

    def _reload_gallery(self) -> None:
        """A local revocation on a signed door: the same signed file, verified again, minus the revocations, live
        through :meth:`Runtime.with_gallery` (no model reload: a removal must take effect at once)."""
        try:
            new = self.runtime.with_gallery(self.gallery_loader(self.runtime))
        except Exception as exc:
            self._emit("reload_failed", self._t(), detail=f"kept the running gallery: {type(exc).__name__}: {exc}")
            return
        self._apply(new)
        self._emit("reloaded", self._t(), detail=f"local revocations: {new.describe()}")

    def _apply(self, new: Runtime) -> None:
        old = self.runtime.config
        for section in ("camera", "relay"):
            changed = getattr(old, section) != getattr(new.config, section)
            if changed and section == "relay" and old.relay.model_copy(update={"pulse_s": new.config.relay.pulse_s}) == new.config.relay:
                continue  # pulse_s applies at once
            if changed:
                log.warning("[%s] changed: it takes effect at the next restart", section)
        self.runtime = new
        self.policy.retune(new.params, new.matcher, new.recognizer.scorer)

    # -- watchdog and status ----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        if self.freshness is not None:
            for kind, detail in self.freshness.tick(self.runtime.gallery.version):
                self._emit(kind, self._t(), detail=detail)
        now = self.clock()
        interval = self.notifier.watchdog_interval_s
        if interval and self._last_progress is not None:
            due = self._last_watchdog is None or now - self._last_watchdog >= interval
            fresh = self._last_watchdog is None or self._last_progress > self._last_watchdog
            if due and fresh:  # frames arrived and an inference completed since the last keep-alive
                self.notifier.watchdog()
                self._last_watchdog = now
        if now - self._last_status >= STATUS_EVERY_S:
            self.notifier.status(self._status_text())
            self._last_status = now
        every_s = 60.0 * getattr(getattr(self.runtime.config, "audit", None), "summary_every_min", 0.0)
        if not self.simulated and every_s and now - self._last_summary >= every_s:
            self.summary.report(self.json_out, self.log_out)  # this interval's figures, then the next interval
            self.summary.reset()
            self._last_summary = now

    def fps(self) -> float:
        if len(self._rate) < 2 or self._rate[-1] <= self._rate[0]:
            return 0.0
        return (len(self._rate) - 1) / (self._rate[-1] - self._rate[0])

    def _status_text(self) -> str:
        last = self._last_event
        what = "none yet" if last is None else " ".join(
            x for x in (last.kind, last.person, None if last.score is None else f"{last.score:.3f}") if x)
        lost = " camera lost;" if getattr(self.camera, "lost", False) else ""
        locked = " LOCKED OUT;" if self.policy.locked_out else ""
        stale = self.freshness.describe() if self.freshness is not None else ""
        stale = f" {stale};" if stale else ""
        return f"{self.fps():.1f} fps;{lost}{locked}{stale} {len(self.runtime.gallery)} enrolled; last: {what}"

    # -- events -----------------------------------------------------------------------------------------
    def _t(self, t: float | None = None) -> float:
        if t is None:
            t = self._now if self.simulated else self.clock()
        return t - self._t0 if not self.simulated else t

    def camera_event(self, kind: str, detail: str) -> None:
        """``on_event`` for :class:`WatchedCamera` (called from the loop's thread)."""
        self._emit(kind, self._t(), detail=detail)

    def _emit(self, kind: str, t: float, crop=None, **fields) -> Event:
        event = Event(kind, t, **fields)
        self.events.append(event)
        self.summary.event(kind)
        self._last_event = event if kind not in ("started",) else self._last_event
        if self.log_out is not None:
            try:
                print(event.log_line(), file=self.log_out, flush=True)
            except (OSError, ValueError):
                pass
        if self.json_out is not None:
            try:
                print(json.dumps(event.to_json()), file=self.json_out, flush=True)
            except (OSError, ValueError):  # the reader went away (`... | head`): nobody to report to, stop
                self.json_out = None
                self.request_stop("output closed")
        self.audit.record(event, crop)
        if self.ready:
            self.notifier.status(self._status_text())
        return event

    # -- shutdown ---------------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        if self.finish_pulse_at_end and self._stop_reason == "end of input":
            # the replay is over, nothing failed: let the last real pulse finish on the MockPin
            self._wait_relay_idle(self.runtime.config.relay.pulse_s + 1.0)
        self.relay.off()
        self._settle_unlocks(force=True)  # a pulse the stop cut short is reported with its real length
        self.notifier.stopping()
        for d in self.policy.end(self._now) + (self.access.end(self._now, self.runtime) if self.access else []):
            self._emit(d.kind, self._t(d.t), person_id=d.person_id, person=d.person, score=d.score, detail=d.detail,
                       candidates=d.candidates, rule=d.rule)
        self._emit("stopping", self._t(), detail=self._stop_reason or "exiting")
        self.summary.report(self.json_out, self.log_out or sys.stderr)  # the last line of the run
        for closer in (self.camera.close, self.relay.close, self.audit.close, getattr(self.access, "close", None)):
            if closer is None:
                continue
            try:
                closer()
            except Exception as exc:
                log.warning("shutdown: %s", exc)

    def _force_off(self) -> None:
        try:
            self.relay.off()
        except Exception:
            pass

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def stop(signum, _frame):
            self.request_stop(f"signal {signal.Signals(signum).name}")

        def hup(_signum, _frame):
            self.request_reload()

        for sig, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, hup)):
            previous[sig] = signal.signal(sig, handler)

        def restore():
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _sighting(result: FrameResult) -> Sighting | None:
    """What the policy needs of one frame's observation."""
    if result.face is None:
        return None
    if not result.usable:
        return Sighting(tuple(float(v) for v in result.face.box), rejected=",".join(result.reasons) or "rejected")
    return Sighting(tuple(float(v) for v in result.face.box), result.embedding, quality_weight(result.report))
