"""How current is the list this signed door runs? The freshness guard, and what a stale door still lets in.

A signed door holds, for the gallery version it runs, the signed statements that vouch for it: the gallery's own
(``GALLERY.sig``) and the newest "still current" statement the desk re-signs on a schedule (``edgeface fleet
refresh``, kept in ``GALLERY.fresh``). The list is **fresh** until the best of them runs out: its ``expires``, or
``issued + [model] max_gallery_age_s`` when that is set, whichever is first. It is **stale** when that moment
has passed, when no valid statement vouches for it, or at once when a verified statement names a *newer* version
of the site's list than the door has (the update was withheld, or has not arrived yet: a door that reconnects to
a cleared gallery topic but sees the desk's freshness statement knows it is behind).

While stale, ``[model] stale_mode`` decides which grants still open (:func:`grant_basis` says what a grant rests
on); the others become ``denied`` with rule ``stale_gallery``:

* ``all_denied`` (default): nothing opens (the request-to-exit button still does: it is not a grant);
* ``badge_only``: only grants that include a badge (``face_or_badge`` badge, ``face_and_badge``): a badge can be
  taken back from a person who left, a face cannot;
* ``faces_denied``: a face alone opens nothing; face and a badge or a PIN still do.

Transitions are gate events (``gallery_stale`` with the reason and the mode, ``gallery_fresh``), the state is in
the door's status message and the gate's STATUS= line. Wall-clock time (the statements are dated by the desk's
clock; the door needs NTP, like TLS does) is read through ``clock``, and never goes back while the gate runs
(:meth:`Freshness.now`: a clock set back cannot revive an expired statement; after a restart, a statement issued
in the door's future makes it stale).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from edgeface.fileutil import file_version
from edgeface.gallery import GalleryError

from .signing import (FUTURE_SKEW_S, SignatureDoc, Statement, check_scope, fresh_path, read_record, signature_path,
                      utc, verify_doc)

log = logging.getLogger(__name__)

MODES = ("all_denied", "badge_only", "faces_denied")
#: what each mode still lets through while stale (the bases of :func:`grant_basis`)
ALLOWED = {"all_denied": frozenset(), "badge_only": frozenset({"badge"}), "faces_denied": frozenset({"badge", "pin"})}


def grant_basis(decision, access_mode: str) -> str:
    """What a ``granted`` decision rests on: ``badge`` (a badge alone, or face and badge), ``pin`` (face and PIN) or
    ``face`` (the face alone, 1:N)."""
    if decision.rule == "verify":
        return "badge" if access_mode == "face_and_badge" else "pin"
    if (decision.detail or "").startswith("face_or_badge: badge"):
        return "badge"
    return "face"


class Freshness:
    def __init__(self, gallery_path, public_key, site: str, door: str | None, max_age_s: float | None,
                 mode: str = "all_denied", clock=time.time, monotonic=time.monotonic) -> None:
        if mode not in MODES:
            raise ValueError(f"stale_mode {mode!r}: one of {', '.join(MODES)}")
        self.gallery_path, self.public_key, self.site, self.door = gallery_path, public_key, site, door
        self.max_age_s = max_age_s
        self.mode = mode
        self.clock = clock
        self.monotonic = monotonic
        self._floor: tuple[float, float] | None = None  # (wall time, monotonic time) of the latest wall time seen
        self._lock = threading.Lock()
        self._statements: dict[int, Statement] = {}  # version -> the statement that keeps it fresh longest
        self._ahead: Statement | None = None  # a verified statement about a newer version than the door has
        self._pending = 0  # a version installed by the fleet link, not live in the loop yet
        self._version: int | None = None  # the version the loop runs
        self._files: tuple | None = None
        self._reported: str | None = "unknown"  # the last state reported by tick()

    @classmethod
    def from_config(cls, cfg, clock=time.time) -> "Freshness":
        from .keys import load_public_key

        m = cfg.model
        site, door = signed_scope(cfg)
        return cls(m.gallery, load_public_key(m.gallery_public_key), site, door, m.max_gallery_age_s, m.stale_mode,
                   clock)

    # -- what arrives -------------------------------------------------------------------------------------
    def vouch(self, st: Statement) -> None:
        """A verified statement (gallery or fresh) about version ``st.gallery_version`` of this site's list."""
        with self._lock:
            self._keep(st)
            if st.gallery_version > max(self._version or 0, self._pending):
                if self._ahead is None or st.gallery_version >= self._ahead.gallery_version:
                    self._ahead = st

    def installed(self, st: Statement) -> None:
        """The fleet link installed this version (the loop makes it live at its next turn)."""
        with self._lock:
            self._pending = max(self._pending, st.gallery_version)
            self._keep(st)
            if self._ahead is not None and self._ahead.gallery_version <= self._pending:
                self._ahead = None

    def _keep(self, st: Statement) -> None:
        old = self._statements.get(st.gallery_version)
        if old is None or self.deadline_of(st) > self.deadline_of(old):
            self._statements[st.gallery_version] = st

    # -- the loop's view ----------------------------------------------------------------------------------
    def sync(self, version: int) -> None:
        """The loop runs ``version``: (re)read the statements on disk when the version or the files changed."""
        files = (file_version(signature_path(self.gallery_path)), file_version(fresh_path(self.gallery_path)))
        with self._lock:
            if version == self._version and files == self._files:
                return
            self._version, self._files = version, files
            if self._ahead is not None and self._ahead.gallery_version <= version:
                self._ahead = None
        for st in self._from_disk(version):
            with self._lock:
                self._keep(st)

    def _from_disk(self, version: int) -> list[Statement]:
        out = []
        try:
            record = read_record(self.gallery_path)
        except GalleryError:
            record = None
        for path, kind in ((signature_path(self.gallery_path), "gallery"), (fresh_path(self.gallery_path), "fresh")):
            try:
                doc = SignatureDoc.from_bytes(path.read_bytes(), str(path))
                st = verify_doc(doc, self.public_key, str(path))
                check_scope(st, self.site, self.door, str(path))
            except FileNotFoundError:
                continue
            except (OSError, GalleryError) as exc:
                log.warning("freshness: %s not used: %s", path, exc)
                continue
            if st.kind != kind or st.gallery_version != version:
                continue
            if kind == "fresh" and (record is None or record.sha256 != st.sha256):
                continue  # about other bytes than the ones installed
            out.append(st)
        return out

    def deadline_of(self, st: Statement) -> float:
        end = float(st.expires)
        if self.max_age_s:
            end = min(end, st.issued + float(self.max_age_s))
        return end

    def fresh_until(self) -> float | None:
        with self._lock:
            st = self._statements.get(self._version) if self._version is not None else None
            return None if st is None else self.deadline_of(st)

    def now(self) -> float:
        """The wall clock, never earlier than the latest wall time this guard has seen plus the monotonic time
        since: a clock set back (by hand, or a spoofed time server) cannot make an expired statement current
        again while the gate runs. A clock that jumps forward is followed."""
        wall, mono = self.clock(), self.monotonic()
        with self._lock:
            if self._floor is not None:
                floor = self._floor[0] + max(0.0, mono - self._floor[1])
                if wall < floor:
                    return floor
            self._floor = (wall, mono)
            return wall

    def reason(self, now: float | None = None) -> str | None:
        """Why the running list is stale now, or None while it is fresh."""
        now = self.now() if now is None else now
        with self._lock:
            version, ahead = self._version, self._ahead
            st = self._statements.get(version) if version is not None else None
        if version is None:
            return None  # not started yet: nothing runs
        if ahead is not None and ahead.gallery_version > version:
            return (f"the site's list is at version {ahead.gallery_version} ({ahead.kind} statement issued "
                    f"{utc(ahead.issued)}), this door runs version {version}: the update has not arrived")
        if st is None:
            return f"no valid signed statement vouches for version {version}"
        if st.issued > now + FUTURE_SKEW_S:
            return f"version {version} was vouched for at {utc(st.issued)}, in this door's future (check the clocks)"
        end = self.deadline_of(st)
        if now >= end:
            why = "its signature expired" if end >= st.expires else \
                f"older than max_gallery_age_s {self.max_age_s:g}"
            return f"version {version} was last vouched for at {utc(st.issued)}; {why} at {utc(end)}"
        return None

    def screen(self, decision, runtime):
        """``decision`` (a grant) as the stale mode lets it stand, or turned into a denial. ``runtime``: the gate's
        (the gallery version it runs, its access mode)."""
        if decision.kind != "granted":
            return decision
        self.sync(runtime.gallery.version)
        access_mode = getattr(getattr(runtime, "access", None), "mode", "face")
        why = self.reason()
        if why is None:
            return decision
        basis = grant_basis(decision, access_mode)
        if basis in ALLOWED[self.mode]:
            return replace(decision, detail=f"{decision.detail or ''} (stale gallery, {self.mode}: {basis} allowed)".strip())
        return replace(decision, kind="denied", rule="stale_gallery",
                       detail=f"stale gallery ({self.mode}: {basis} not allowed): {why}")

    def tick(self, version: int) -> list[tuple[str, str]]:
        """Called by the loop: the events of a change between fresh and stale since the last call."""
        self.sync(version)
        why = self.reason()
        state = "fresh" if why is None else "stale"
        if state == self._reported:
            return []
        first = self._reported == "unknown"
        self._reported = state
        if state == "stale":
            return [("gallery_stale", f"{why}; stale_mode {self.mode}")]
        if first:
            return []
        until = self.fresh_until()
        return [("gallery_fresh", f"version {version} fresh until {utc(until) if until else '?'}")]

    def status(self, version: int | None = None) -> dict:
        """For the door's status message; ``version``: the gallery version the gate runs now."""
        if version is not None:
            self.sync(version)
        why = self.reason()
        until = self.fresh_until()
        with self._lock:
            ahead = self._ahead.gallery_version if self._ahead is not None else None
        return {"state": "fresh" if why is None else "stale", "reason": why, "mode": self.mode,
                "fresh_until": utc(until) if until else None, "site_version": ahead}

    def describe(self) -> str:
        why = self.reason()
        return "" if why is None else f"STALE GALLERY ({self.mode})"


def signed_scope(cfg) -> tuple[str, str | None]:
    """(site, door) a signed gallery must name for this door: ``[fleet]`` site and door, else ``[model]
    gallery_site`` (a door without a fleet link has no door name: it takes only site-wide lists)."""
    fleet = getattr(cfg, "fleet", None)
    if fleet is not None:
        return fleet.site, fleet.door
    return cfg.model.gallery_site, None


