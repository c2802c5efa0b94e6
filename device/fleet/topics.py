"""MQTT topic names: ``PREFIX/SITE/gallery`` (retained, signed gallery envelope), ``PREFIX/SITE/fresh``
(retained, the desk's signed "still current" statement), ``PREFIX/SITE/DOOR/events`` (one JSON event per message,
QoS 1) and ``PREFIX/SITE/DOOR/status`` (retained JSON, last will ``offline``)."""

from __future__ import annotations


def gallery_topic(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/gallery"


def fresh_topic(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/fresh"


def parse_door_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """``PREFIX/SITE/DOOR/KIND`` -> (site, door, kind), None for any other topic."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def events_topic(prefix: str, site: str, door: str) -> str:
    return f"{prefix}/{site}/{door}/events"


def status_topic(prefix: str, site: str, door: str) -> str:
    return f"{prefix}/{site}/{door}/status"


def all_events(prefix: str, site: str) -> str:
    """Every door's events of a site (``+`` matches one topic level)."""
    return f"{prefix}/{site}/+/events"


def all_status(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/+/status"
