"""The desk side: publish a signed gallery to a site (``edgeface fleet publish``), vouch for it on a schedule
(``edgeface fleet refresh``) and follow every door's events (``edgeface fleet events``), duplicates removed by
event id, events whose topic and payload disagree refused, ``seq`` gaps reported."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path

from edgeface.errors import EdgefaceError
from edgeface.fileutil import atomic_write_bytes

from .signing import SignatureDoc, pack_envelope, read_gallery_bytes, sign_bytes, sign_fresh
from .topics import fresh_topic, gallery_topic, parse_door_topic

#: event ids remembered for duplicate removal (a door resends at most its unacknowledged window)
SEEN_IDS = 100_000
PUBLISHED_SUFFIX = ".published"


class NotPublishedError(EdgefaceError):
    """``fleet refresh`` on a gallery that is not the one last published to the site."""


def published_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + PUBLISHED_SUFFIX)


def signed_envelope(gallery_path: str | Path, private_key, site: str, *, doors=None,
                    valid_for_s: int | None = None) -> tuple[bytes, SignatureDoc]:
    data = read_gallery_bytes(gallery_path)
    doc = sign_bytes(data, private_key, site, doors=doors, valid_for_s=valid_for_s, source=str(gallery_path))
    return pack_envelope(data, doc), doc


def publish_gallery(client, gallery_path: str | Path, private_key, prefix: str, site: str, timeout_s: float = 30.0,
                    *, doors=None, valid_for_s: int | None = None,
                    fresh_valid_for_s: int | None = None) -> SignatureDoc:
    """Sign the gallery file as it is for ``site`` and publish it retained, QoS 1, on ``PREFIX/SITE/gallery``, then
    a "still current" statement for it on ``PREFIX/SITE/fresh``; returns once the broker acknowledged both. The
    desk remembers what it published (``GALLERY.published``) so that ``refresh`` vouches for nothing else."""
    data = read_gallery_bytes(gallery_path)
    doc = sign_bytes(data, private_key, site, doors=doors, valid_for_s=valid_for_s, source=str(gallery_path))
    client.publish_and_wait(gallery_topic(prefix, site), pack_envelope(data, doc), qos=1, retain=True,
                            timeout_s=timeout_s)
    fresh = sign_fresh(data, private_key, site, doors=doors, valid_for_s=fresh_valid_for_s, source=str(gallery_path))
    client.publish_and_wait(fresh_topic(prefix, site), fresh.to_bytes(), qos=1, retain=True, timeout_s=timeout_s)
    _remember(gallery_path, site, doc)
    return doc


def publish_fresh(client, gallery_path: str | Path, private_key, prefix: str, site: str, timeout_s: float = 30.0,
                  *, doors=None, valid_for_s: int | None = None) -> SignatureDoc:
    """Re-sign "this is still the current list" for the gallery last published to ``site`` and publish it retained
    on ``PREFIX/SITE/fresh``. Refused (:class:`NotPublishedError`) when the desk's file changed since: the doors
    do not have that list, and vouching for the old one would hide a pending removal."""
    data = read_gallery_bytes(gallery_path)
    sent = _published(gallery_path).get(site)
    digest = hashlib.sha256(data).hexdigest()
    if sent is None or sent.get("sha256") != digest:
        what = "was never published" if sent is None else f"changed since version {sent.get('version')} was published"
        raise NotPublishedError(f"{gallery_path} {what} to site {site}: publish it first (edgeface fleet publish); "
                                "a refresh only vouches for the list the doors were sent")
    doc = sign_fresh(data, private_key, site, doors=doors, valid_for_s=valid_for_s, source=str(gallery_path))
    client.publish_and_wait(fresh_topic(prefix, site), doc.to_bytes(), qos=1, retain=True, timeout_s=timeout_s)
    return doc


def _published(gallery_path) -> dict:
    try:
        doc = json.loads(published_path(gallery_path).read_text())
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(gallery_path, site: str, doc: SignatureDoc) -> None:
    record = _published(gallery_path)
    record[site] = {"version": doc.gallery_version, "sha256": doc.sha256,
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_bytes(published_path(gallery_path), json.dumps(record, indent=1).encode() + b"\n", mode=0o600)


class EventFollower:
    """Door events as they arrive: JSON objects with an ``id``; a second copy of an id (a resend after a lost
    acknowledgement) is dropped and counted. With the ``topic`` it came on, an event whose ``site``/``door``
    are not the topic's is refused (``mismatched``: the broker vouches only for who may publish on a topic), and
    per door the ``seq`` numbers not seen between the first and the highest are the open gaps (:meth:`gaps`)."""

    def __init__(self, remember: int = SEEN_IDS, prefix: str = "edgeface") -> None:
        self.remember = int(remember)
        self.prefix = prefix
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.stats = {"received": 0, "duplicates": 0, "malformed": 0, "mismatched": 0, "gaps": 0}
        self._seq: dict[tuple[str, str], list] = {}  # (site, door) -> [highest seq, set of missing seqs]
        self.new_gaps: list[tuple[str, str, list[int]]] = []  # gaps opened by the last accept()

    def accept(self, payload: bytes, topic: str | None = None) -> dict | None:
        self.stats["received"] += 1
        self.new_gaps = []
        try:
            event = json.loads(bytes(payload).decode("utf-8"))
            event_id = event["id"]
            if not isinstance(event_id, str):
                raise TypeError("id is not a string")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            self.stats["malformed"] += 1
            return None
        if topic is not None:
            where = parse_door_topic(self.prefix, topic)
            if where is None or (event.get("site"), event.get("door")) != where[:2]:
                self.stats["mismatched"] += 1
                return None
        if event_id in self.seen:
            self.stats["duplicates"] += 1
            return None
        self.seen[event_id] = None
        if len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        self._track(event)
        return event

    def _track(self, event: dict) -> None:
        seq = event.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        key = (str(event.get("site")), str(event.get("door")))
        state = self._seq.get(key)
        if state is None:
            self._seq[key] = [seq, set()]
            return
        highest, missing = state
        if seq > highest + 1:
            gap = list(range(highest + 1, seq))
            missing.update(gap)
            self.stats["gaps"] += len(gap)
            self.new_gaps.append((key[0], key[1], gap))
        if seq in missing:
            missing.discard(seq)
            self.stats["gaps"] -= 1
        state[0] = max(highest, seq)

    def gaps(self) -> dict[str, list[int]]:
        """``SITE/DOOR`` -> the seq numbers still missing (a door's outbox overflowed, or events were lost)."""
        return {f"{s}/{d}": sorted(m) for (s, d), (_, m) in self._seq.items() if m}
