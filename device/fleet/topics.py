"""MQTT topic names: ``PREFIX/SITE/gallery`` (retained, signed gallery envelope), ``PREFIX/SITE/DOOR/events``
(one JSON event per message, QoS 1) and ``PREFIX/SITE/DOOR/status`` (retained JSON, last will ``offline``)."""

from __future__ import annotations


def gallery_topic(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/gallery"


def events_topic(prefix: str, site: str, door: str) -> str:
    return f"{prefix}/{site}/{door}/events"


def status_topic(prefix: str, site: str, door: str) -> str:
    return f"{prefix}/{site}/{door}/status"


def all_events(prefix: str, site: str) -> str:
    """Every door's events of a site (``+`` matches one topic level)."""
    return f"{prefix}/{site}/+/events"


def all_status(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/+/status"
