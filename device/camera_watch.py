"""A watchdog around any :class:`~edgeface.device.camera.Camera`: timeouts, loss reporting, reconnects.

A door camera dies in two ways: it raises (USB unplugged, RTSP server gone) or it hangs (a driver stops
delivering and ``read()`` never returns). Both must leave the gate loop responsive, so the camera is
opened and read in a reader thread and the caller waits on a mailbox with a timeout:

* a read that raises, or no new frame within ``read_timeout_s``, makes the camera *lost*: ``camera_lost``
  is reported ONCE (not for every failed retry), the camera is abandoned and a new one is made by
  ``camera_factory`` after ``retry_initial_s``, then ``2x``, ``4x``... up to ``retry_max_s``;
* opening (``factory()`` + ``open()`` + the first frame) is given ``open_timeout_s``, since starting a
  sensor or connecting to a stream legitimately takes longer than one frame;
* the first frame after a loss reports ``camera_reacquired`` and resets the backoff.

Live sources (``camera.finite is False``, as every live :class:`Camera` declares) are read free-running:
the reader thread reads continuously and keeps only the newest frame,
so the gate always gets a fresh frame (stale ones are counted in ``dropped``) and network streams never
build up latency in their buffers. Finite sources (video file, image folder) are read one frame per
``read()``, so a replay loses no frame however slow the gate is; so is any camera object without a
``finite`` attribute.

``read()`` returns a :class:`Frame`, or ``None`` while the camera is lost or (re)opening; it never blocks
much longer than ``read_timeout_s``. When a finite source ends, ``read()`` raises
:class:`~edgeface.device.camera.EndOfStream` (and ``finished`` becomes True); it keeps raising after that.

A hung read cannot be interrupted from Python: its thread is abandoned (daemon) and the camera is closed
by that thread if the read ever returns. Closing from another thread while a native read is in progress
is not safe for OpenCV captures, so it is not done; ``abandoned`` counts such threads.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Callable

from .camera import Camera, CameraError, EndOfStream, Frame

log = logging.getLogger(__name__)


class _Mailbox:
    """One slot between the reader and its owner. A new frame replaces an unread one (counted as dropped);
    the reader's last word (an error or the end of a replay) is never replaced."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: tuple[str, object] | None = None
        self.dropped = 0

    def put(self, item: tuple[str, object]) -> None:
        with self._cond:
            if self._item is not None:
                if self._item[0] != "frame" or self._item[1] is None:
                    return  # a final word is kept
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[str, object] | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            if item is not None:
                self._cond.notify_all()  # a request-mode reader waits for its frame to be taken
            return item

    def wait_taken(self, stop: threading.Event) -> None:
        with self._cond:
            while self._item is not None and not stop.is_set():
                self._cond.wait(0.5)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class _Reader(threading.Thread):
    """Owns one camera for its whole life: makes it, opens it, reads (free-running for live sources, one
    frame per take for finite ones), and closes it when told to stop or when the camera fails."""

    def __init__(self, factory: Callable[[], Camera], generation: int):
        super().__init__(name=f"camera-reader-{generation}", daemon=True)
        self.factory = factory
        self.mailbox = _Mailbox()
        self.stop = threading.Event()
        self.camera: Camera | None = None

    def run(self) -> None:
        camera = None
        final = None
        try:
            camera = self.factory()
            camera.open()
            self.camera = camera
            # only a camera that says it is live runs free; anything else (a duck-typed wrapper) is read on request
            free_running = getattr(camera, "finite", None) is False
            while not self.stop.is_set():
                frame = camera.read()
                if frame is None:
                    final = ("frame", None)
                    return
                self.mailbox.put(("frame", frame))
                if not free_running:
                    self.mailbox.wait_taken(self.stop)
        except BaseException as exc:  # everything a driver raises is a lost camera, reported by the owner
            final = ("error", exc)
        finally:
            # release before the owner hears the last word, so nothing native runs once it has moved on
            if camera is not None:
                try:
                    camera.close()
                except Exception as exc:
                    log.warning("closing %r failed: %s", camera, exc)
            if final is not None:
                self.mailbox.put(final)

    def halt(self) -> None:
        self.stop.set()
        self.mailbox.wake()


class WatchedCamera(Camera):
    """See the module docstring. ``on_event(kind, detail)`` receives "camera_lost" and "camera_reacquired";
    it is called from the caller's thread (inside ``read()``), never from the reader thread."""

    def __init__(
        self,
        camera_factory: Callable[[], Camera],
        read_timeout_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        on_event: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
        open_timeout_s: float | None = None,
    ):
        if read_timeout_s <= 0 or retry_initial_s <= 0 or retry_max_s < retry_initial_s:
            raise ValueError("need read_timeout_s > 0 and 0 < retry_initial_s <= retry_max_s")
        self.factory = camera_factory
        self.read_timeout_s = float(read_timeout_s)
        self.open_timeout_s = float(open_timeout_s if open_timeout_s is not None else max(10.0, read_timeout_s))
        self.retry_initial_s = float(retry_initial_s)
        self.retry_max_s = float(retry_max_s)
        self.on_event = on_event
        self.clock = clock
        self.lost = False
        self.finished = False
        self.abandoned = 0
        #: the delay before each reconnect attempt since the gate started (newest last): the backoff, observable
        self.retry_delays: collections.deque[float] = collections.deque(maxlen=64)
        self.frames = 0
        self._dropped_before = 0
        self._reader: _Reader | None = None
        self._last_camera: Camera | None = None
        self._generation = 0
        self._waiting = False
        self._deadline = 0.0
        self._next_attempt = 0.0
        self._delay = self.retry_initial_s
        self._closed = threading.Event()

    # --- what the camera is, when known ---------------------------------------------------------------------
    @property
    def camera(self) -> Camera | None:
        """The camera currently (or, after a loss or the end, most recently) opened."""
        if self._reader is not None and self._reader.camera is not None:
            self._last_camera = self._reader.camera
        return self._last_camera

    @property
    def fps(self) -> float | None:
        return getattr(self.camera, "fps", None)

    @property
    def finite(self) -> bool:
        cam = self.camera
        return bool(cam is not None and getattr(cam, "finite", False))

    @property
    def description(self) -> str:
        cam = self.camera
        return f"watched {getattr(cam, 'description', repr(cam)) if cam is not None else '(not open)'}"

    @property
    def dropped(self) -> int:
        """Live frames replaced by a newer one before the gate asked for them (since this object was made)."""
        return self._dropped_before + (self._reader.mailbox.dropped if self._reader is not None else 0)

    # --- the loop's interface -------------------------------------------------------------------------------
    def open(self) -> None:
        """Start opening in the background (returns at once; the first ``read()`` waits for the first frame)."""
        if self._reader is None and not self.lost and not self.finished and not self._closed.is_set():
            self._start_reader()

    def read(self) -> Frame | None:
        if self.finished:
            raise EndOfStream("the replay has ended")
        if self._closed.is_set():
            raise CameraError("camera is closed")
        if self._reader is None:
            wait = self._next_attempt - self.clock()
            if wait > 0:
                self._closed.wait(min(wait, self.read_timeout_s))
                if self._closed.is_set() or self.clock() < self._next_attempt:
                    return None
            self._start_reader()
        reader = self._reader
        if not self._waiting:
            self._waiting = True
            self._deadline = self.clock() + self.read_timeout_s
        budget = min(max(self._deadline - self.clock(), 0.0), self.read_timeout_s)
        item = reader.mailbox.take(budget)
        if item is None:
            if self.clock() >= self._deadline:
                opening = reader.camera is None
                self.abandoned += 1
                self._lose(f"no frame within {self.open_timeout_s if opening else self.read_timeout_s:g} s"
                           + (" of opening" if opening else ""))
            return None
        self._waiting = False
        kind, value = item
        if kind == "error":
            self._lose(_describe(value))
            return None
        if value is None:
            self.finished = True
            self._stop_reader().join(self.read_timeout_s)  # already released the camera; just let it end
            raise EndOfStream("the replay has ended")
        if self.lost:
            self.lost = False
            self.on_event("camera_reacquired", f"{reader.camera!r} after {self._delay:g} s backoff")
        self._delay = self.retry_initial_s
        self.frames += 1
        return value

    def close(self) -> None:
        """Stop reading and release the camera (idempotent). Waits up to ``read_timeout_s`` for the reader to
        release it; a reader stuck in a hung read is left behind (daemon thread)."""
        self._closed.set()
        reader = self._stop_reader()
        if reader is not None and reader is not threading.current_thread():
            reader.join(self.read_timeout_s)

    # --- internals ------------------------------------------------------------------------------------------
    def _start_reader(self) -> None:
        self._generation += 1
        self._reader = _Reader(self.factory, self._generation)
        self._reader.start()
        # the first frame is awaited with the open budget
        self._waiting = True
        self._deadline = self.clock() + self.open_timeout_s

    def _stop_reader(self) -> _Reader | None:
        self.camera  # remember it (fps, description) before the reader goes
        reader, self._reader = self._reader, None
        self._waiting = False
        if reader is not None:
            self._dropped_before += reader.mailbox.dropped
            reader.halt()
        return reader

    def _lose(self, reason: str) -> None:
        self._stop_reader()
        if not self.lost:
            self.lost = True
            self._delay = self.retry_initial_s
            self.on_event("camera_lost", reason)
        else:
            self._delay = min(self._delay * 2, self.retry_max_s)
            log.info("camera still lost (%s); next try in %g s", reason, self._delay)
        self.retry_delays.append(self._delay)
        self._next_attempt = self.clock() + self._delay


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, CameraError) else f"{type(exc).__name__}: {text}"
