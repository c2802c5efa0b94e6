"""Everything a door runs against the broker, beside (never inside) the decision loop.

* **Gallery**: subscribed to ``PREFIX/SITE/gallery`` and ``PREFIX/SITE/fresh`` (the desk's signed "still
  current" statement) with QoS 1; the retained messages give a door that was offline the newest gallery and
  statement as soon as it connects. Each message goes to :class:`GallerySubscriber` in paho's thread. No
  retained gallery within :data:`WITHHELD_AFTER_S` of a connect (the topic was cleared, or the broker withholds
  it) is a ``gallery_withheld`` event; the freshness guard (:mod:`.freshness`) decides what a door that stops
  hearing from the desk still lets in.
* **Events**: every gate event (no face images: the crop the audit log may get is never passed on) is put in
  the on-disk :class:`EventQueue` with the site and door; a sender thread publishes the oldest ones with QoS 1
  while connected and deletes each once the broker acknowledged it; paho resends unacknowledged ones after a
  reconnect, so nothing is handed to paho twice within one process.
* **Status**: retained JSON on ``PREFIX/SITE/DOOR/status``: ``online`` with the model, gallery version and
  counters on every connect and after every gallery message; the last will (and a clean stop) say ``offline``.
* **Loss**: paho reconnects with backoff; the gate gets ``fleet_disconnected`` / ``fleet_reconnected`` events
  (``fleet_connected`` the first time). The door keeps deciding on its last good gallery throughout.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from ..events import now_wall
from .event_queue import EventQueue
from .keys import load_public_key
from .mqtt_client import MqttClient
from .subscriber import GallerySubscriber
from .topics import events_topic, fresh_topic, gallery_topic, status_topic

log = logging.getLogger(__name__)

#: messages handed to paho and not yet acknowledged, at most
MAX_INFLIGHT = 50
#: a connect followed by no retained gallery message for this long is reported as withheld
WITHHELD_AFTER_S = 5.0
#: gate events after which the retained status is published again
STATUS_EVENTS = ("gallery_stale", "gallery_fresh", "reloaded")


class DoorLink:
    def __init__(self, cfg, gate, client_factory=MqttClient.from_config) -> None:
        fleet = cfg.fleet
        self.cfg, self.gate, self.fleet = cfg, gate, fleet
        self.events_topic = events_topic(fleet.topic_prefix, fleet.site, fleet.door)
        self.status_topic = status_topic(fleet.topic_prefix, fleet.site, fleet.door)
        self.queue = EventQueue(fleet.queue_path, fleet.queue_max)
        self.gallery_topic = gallery_topic(fleet.topic_prefix, fleet.site)
        self.fresh_topic = fresh_topic(fleet.topic_prefix, fleet.site)
        self.subscriber = GallerySubscriber(cfg.model.gallery, load_public_key(cfg.model.gallery_public_key), gate,
                                            int(fleet.max_gallery_mb * (1 << 20)), site=fleet.site, door=fleet.door,
                                            freshness=getattr(gate, "freshness", None))
        # with the shipped broker configuration (use_username_as_clientid) the broker uses the user name instead
        self.client = client_factory(
            fleet, f"{fleet.site}/{fleet.door}",
            will=(self.status_topic, self._status("offline")),
            on_message=self._on_message, on_connected=self._on_connected, on_disconnected=self._on_disconnected,
            subscriptions=((self.gallery_topic, 1), (self.fresh_topic, 1)))
        self.connects = 0
        self._inflight: dict[int, object] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="fleet-sender", daemon=True)

    # -- life ---------------------------------------------------------------------------------------------
    def start(self) -> "DoorLink":
        self.client.start()
        self._sender.start()
        return self

    def stop(self, drain_s: float = 2.0) -> None:
        """Send what is queued (for up to ``drain_s`` while connected), say ``offline``, disconnect."""
        deadline = time.monotonic() + drain_s
        while self.client.connected and len(self.queue) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._sender.is_alive():
            self._sender.join(timeout=5)
        self._collect_acks()
        self.client.stop(last=(self.status_topic, self._status("offline")))
        self.queue.close()

    # -- events upstream ----------------------------------------------------------------------------------
    def record(self, event) -> None:
        """Queue a gate event (called by the gate's audit, in the loop's thread; never raises)."""
        try:
            self.queue.put({"site": self.fleet.site, "door": self.fleet.door, **event.to_json()})
            self._wake.set()
            if event.kind in STATUS_EVENTS:  # what the status message shows changed
                self.publish_status()
        except Exception as exc:
            log.error("fleet: event not queued: %s", exc)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._collect_acks()
                if self.client.connected:
                    for seq, payload in self.queue.peek(MAX_INFLIGHT - len(self._inflight), set(self._inflight)):
                        self._inflight[seq] = self.client.publish(self.events_topic, payload, qos=1)
            except Exception as exc:  # keep sending later; the rows stay queued
                log.error("fleet sender: %s: %s", type(exc).__name__, exc)
            self._wake.wait(0.05 if self._inflight else 0.5)
            self._wake.clear()

    def _collect_acks(self) -> None:
        acked = [seq for seq, info in self._inflight.items() if info.is_published()]
        self.queue.done(acked)
        for seq in acked:
            del self._inflight[seq]

    # -- status -------------------------------------------------------------------------------------------
    def _status(self, state: str) -> bytes:
        runtime = getattr(self.gate, "runtime", None)
        doc = {"state": state, "site": self.fleet.site, "door": self.fleet.door, "wall": now_wall()}
        if state == "online" and runtime is not None:
            doc.update(model=runtime.key, fingerprint=runtime.recognizer.fingerprint,
                       gallery_version=runtime.gallery.version, enrolled=len(runtime.gallery),
                       gallery=dict(self.subscriber.stats), queued=len(self.queue), dropped=self.queue.dropped)
            freshness = getattr(self.gate, "freshness", None)
            if freshness is not None:
                doc["freshness"] = freshness.status(runtime.gallery.version)
        return json.dumps(doc).encode()

    def publish_status(self) -> None:
        if self.client.connected:
            self.client.publish(self.status_topic, self._status("online"), qos=1, retain=True)

    # -- paho's thread ------------------------------------------------------------------------------------
    def _on_connected(self) -> None:
        self.connects += 1
        kind = "fleet_connected" if self.connects == 1 else "fleet_reconnected"
        self.gate.post_event(kind, f"broker {self.fleet.broker}, {len(self.queue)} events queued")
        self.publish_status()
        self._wake.set()
        connected_at = time.monotonic()
        timer = threading.Timer(WITHHELD_AFTER_S, self._check_withheld, (connected_at, self.connects))
        timer.daemon = True
        timer.start()

    def _check_withheld(self, connected_at: float, connects: int) -> None:
        """No retained gallery since the connect: the topic was cleared, or something withholds it."""
        if self._stop.is_set() or connects != self.connects or not self.client.connected:
            return
        if self.subscriber.last_message.get("gallery", float("-inf")) >= connected_at:
            return
        self.subscriber.stats["withheld"] += 1
        runtime = getattr(self.gate, "runtime", None)
        version = "?" if runtime is None else runtime.gallery.version
        self.gate.post_event("gallery_withheld", f"no retained gallery on {self.gallery_topic} within "
                                                 f"{WITHHELD_AFTER_S:g} s of connecting (cleared or withheld); kept "
                                                 f"version {version}")

    def _on_disconnected(self, reason: str) -> None:
        if self._stop.is_set():  # our own goodbye
            return
        runtime = getattr(self.gate, "runtime", None)
        kept = "" if runtime is None else f"keeping gallery version {runtime.gallery.version}, "
        self.gate.post_event("fleet_disconnected", f"broker {self.fleet.broker}: {reason}; {kept}events queue on disk")

    def _on_message(self, topic: str, payload: bytes) -> None:
        kind = "fresh" if topic == self.fresh_topic else "gallery"
        self.subscriber.handle(payload, f"{topic} message", kind)
        # the gate swaps the gallery at its next frame; give it a moment so the status shows the new version
        deadline = time.monotonic() + 1.0
        while self.subscriber.accepted and self.gate.runtime.gallery.version < self.subscriber.accepted.version \
                and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.02)
        self.publish_status()


class FleetAudit:
    """The gate's audit, teed: every event to the local audit log (with its crop, if that is configured) and,
    without any image, to the fleet outbox. Closing it stops the fleet link (the gate closes its audit last)."""

    def __init__(self, inner, link: DoorLink) -> None:
        self.inner, self.link = inner, link

    def record(self, event, face_crop=None):
        self.link.record(event)
        return self.inner.record(event, face_crop)

    def close(self) -> None:
        try:
            self.link.stop()
        finally:
            self.inner.close()
