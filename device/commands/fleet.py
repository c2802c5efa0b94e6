"""``edgeface fleet publish|events``: send a signed gallery to every door of a site; follow the doors' events."""

from __future__ import annotations

NAME = "fleet"
HELP = "publish a signed gallery to a site's doors over MQTT, or follow their events"
DESCRIPTION = """Many doors, one gallery, over an MQTT broker (Mosquitto, EMQX, HiveMQ...).

  edgeface fleet publish --gallery people.gallery --key gallery_signing.key --broker mqtt://HOST:1883 --site hq
  edgeface fleet events --broker mqtt://HOST:1883 --site hq [--count N] [--timeout S] [--status]

publish signs the gallery as it is and publishes it retained (QoS 1) on PREFIX/SITE/gallery: doors that are
offline get it when they reconnect. events prints one JSON object per door event (duplicates removed by id);
--status also prints the doors' status messages."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pub = sub.add_parser("publish", help="sign GALLERY and publish it to SITE (retained)")
    pub.add_argument("--gallery", required=True, metavar="G", help="gallery file")
    pub.add_argument("--key", required=True, metavar="PRIVATE", help="Ed25519 private key (edgeface keys generate)")
    ev = sub.add_parser("events", help="print the events of every door of SITE as JSON lines")
    ev.add_argument("--count", type=int, metavar="N", help="stop after N events")
    ev.add_argument("--status", action="store_true", help="also print door status messages")
    ev.add_argument("--session", metavar="ID", help="a persistent session with this client id: the broker keeps "
                    "the events that arrive while this follower is away (QoS 1)")
    for p in (pub, ev):
        p.add_argument("--broker", required=True, metavar="URL", help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        p.add_argument("--site", required=True, help="site name")
        p.add_argument("--prefix", default="edgeface", help="topic prefix (default: edgeface)")
        p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (events: stop)")
        p.add_argument("--username", help="broker user name")
        p.add_argument("--password-file", metavar="FILE", help="file holding the broker password")
        p.add_argument("--ca-file", metavar="FILE", help="CA certificate of the broker (TLS)")
        p.add_argument("--cert-file", metavar="FILE", help="client certificate (PEM)")
        p.add_argument("--key-file", metavar="FILE", help="key of the client certificate")


def _client(args, **kw):
    from pathlib import Path

    from edgeface.config import FleetConfig
    from edgeface.device.fleet.mqtt_client import MqttClient
    from edgeface.errors import ConfigError

    try:
        fleet = FleetConfig(broker=args.broker, site=args.site, door="desk", topic_prefix=args.prefix,
                            username=args.username, password_file=args.password_file and Path(args.password_file),
                            ca_file=args.ca_file and Path(args.ca_file), cert_file=args.cert_file and Path(args.cert_file),
                            key_file=args.key_file and Path(args.key_file))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"fleet {args.action}: {exc}") from None
    return fleet, MqttClient.from_config(fleet, getattr(args, "session", None) or "", **kw)


def run(args) -> int:
    if args.action == "publish":
        return _publish(args)
    return _events(args)


def _publish(args) -> int:
    from edgeface.device.fleet.keys import load_private_key
    from edgeface.device.fleet.publisher import publish_gallery

    key = load_private_key(args.key)
    fleet, client = _client(args)
    timeout = args.timeout or 30.0
    client.start()
    try:
        client.wait_connected(timeout)
        doc = publish_gallery(client, args.gallery, key, fleet.topic_prefix, fleet.site, timeout)
    finally:
        client.stop()
    print(f"published {args.gallery} version {doc.gallery_version} ({doc.size} bytes, key {doc.key_id}) "
          f"to {fleet.topic_prefix}/{fleet.site}/gallery")
    return 0


def _events(args) -> int:
    import json
    import queue
    import sys
    import time

    from edgeface.device.fleet.publisher import EventFollower
    from edgeface.device.fleet.topics import all_events, all_status

    follower, inbox = EventFollower(), queue.SimpleQueue()
    subs = [(all_events(args.prefix, args.site), 1)] + ([(all_status(args.prefix, args.site), 1)] if args.status else [])
    fleet, client = _client(args, subscriptions=tuple(subs), on_message=lambda t, p: inbox.put((t, p)),
                            clean_session=not args.session)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    shown = 0
    client.start()
    try:
        while args.count is None or shown < args.count:
            wait = 0.5 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                topic, payload = inbox.get(timeout=min(wait, 0.5))
            except queue.Empty:
                continue
            if topic.endswith("/status"):
                print(json.dumps({"status": topic, **_json(payload)}), flush=True)
                continue
            event = follower.accept(payload)
            if event is not None:
                print(json.dumps(event), flush=True)
                shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.stop()
    print(f"{shown} events; {follower.stats['duplicates']} duplicates and {follower.stats['malformed']} malformed "
          "messages dropped", file=sys.stderr)
    return 0


def _json(payload: bytes) -> dict:
    import json

    try:
        doc = json.loads(payload)
        return doc if isinstance(doc, dict) else {"payload": doc}
    except ValueError:
        return {"malformed": len(payload)}
