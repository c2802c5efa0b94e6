"""The desk side: publish a signed gallery to a site (``edgeface fleet publish``) and follow every door's events
(``edgeface fleet events``), duplicates removed by event id."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

from .signing import SignatureDoc, pack_envelope, read_gallery_bytes, sign_bytes
from .topics import gallery_topic

#: event ids remembered for duplicate removal (a door resends at most its unacknowledged window)
SEEN_IDS = 100_000


def signed_envelope(gallery_path: str | Path, private_key) -> tuple[bytes, SignatureDoc]:
    data = read_gallery_bytes(gallery_path)
    doc = sign_bytes(data, private_key, str(gallery_path))
    return pack_envelope(data, doc), doc


def publish_gallery(client, gallery_path: str | Path, private_key, prefix: str, site: str,
                    timeout_s: float = 30.0) -> SignatureDoc:
    """Sign the gallery file as it is and publish it retained, QoS 1, on ``PREFIX/SITE/gallery``; returns once
    the broker acknowledged it."""
    payload, doc = signed_envelope(gallery_path, private_key)
    client.publish_and_wait(gallery_topic(prefix, site), payload, qos=1, retain=True, timeout_s=timeout_s)
    return doc


class EventFollower:
    """Door events as they arrive: JSON objects with an ``id``; a second copy of an id (a resend after a lost
    acknowledgement) is dropped and counted."""

    def __init__(self, remember: int = SEEN_IDS) -> None:
        self.remember = int(remember)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.stats = {"received": 0, "duplicates": 0, "malformed": 0}

    def accept(self, payload: bytes) -> dict | None:
        self.stats["received"] += 1
        try:
            event = json.loads(payload.decode("utf-8"))
            event_id = event["id"]
            if not isinstance(event_id, str):
                raise TypeError("id is not a string")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            self.stats["malformed"] += 1
            return None
        if event_id in self.seen:
            self.stats["duplicates"] += 1
            return None
        self.seen[event_id] = None
        if len(self.seen) > self.remember:
            self.seen.popitem(last=False)
        return event
