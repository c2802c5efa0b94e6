"""``edgeface fleet publish|refresh|events|broker``: send a signed gallery to every door of a site, vouch for it on a
schedule, follow the doors' events, make the broker's access files."""

from __future__ import annotations

NAME = "fleet"
HELP = "publish a signed gallery to a site's doors over MQTT, vouch for it, follow their events, set up the broker"
DESCRIPTION = """Many doors, one gallery, over an MQTT broker (Mosquitto with systemd/mosquitto/edgeface.conf).

  edgeface fleet publish --gallery people.gallery --key gallery_signing.key --site hq \\
      --broker mqtts://HOST:8883 --username desk --password-file desk.password [--valid-for 7d] [--doors a,b]
  edgeface fleet refresh --gallery people.gallery --key gallery_signing.key --site hq --broker ... [--valid-for 1d]
  edgeface fleet events --site hq --broker ... --username collector-XXXX --password-file collector-XXXX.password \\
      --session collector [--count N] [--timeout S] [--status]
  edgeface fleet broker --out /etc/mosquitto/edgeface --door hq/front --door hq/side

publish signs the gallery for SITE (optionally only some of its doors) with an expiry and publishes it retained
(QoS 1) on PREFIX/SITE/gallery, and a "still current" statement on PREFIX/SITE/fresh: doors that are offline get
both when they reconnect. refresh re-signs that statement (run it on a schedule shorter than the doors'
max_gallery_age_s: systemd/edgeface-fleet-refresh.timer); it refuses a gallery changed since it was published.
events prints one JSON object per door event (duplicates removed by id; events whose topic and payload disagree
refused and counted; seq gaps reported). broker writes the Mosquitto ACL, password file and one credential file
per door, for the desk and for the collector. Broker passwords come from files (--password-file, or
$CREDENTIALS_DIRECTORY/mqtt-password), never from the command line."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pub = sub.add_parser("publish", help="sign GALLERY for SITE and publish it (retained) with a freshness statement")
    ref = sub.add_parser("refresh", help="re-sign 'still current' for the gallery last published to SITE")
    for p in (pub, ref):
        p.add_argument("--gallery", required=True, metavar="G", help="gallery file")
        p.add_argument("--key", required=True, metavar="PRIVATE", help="Ed25519 private key (edgeface keys generate)")
        p.add_argument("--doors", metavar="A,B", help="only these doors of SITE (default: every door of the site)")
        p.add_argument("--valid-for", metavar="DURATION", help="how long the signed statement is valid (e.g. 12h, 7d; "
                       "default: 7d for publish, 1d for refresh)")
    pub.add_argument("--fresh-valid-for", metavar="DURATION", help="validity of the freshness statement (default 1d)")
    ev = sub.add_parser("events", help="print the events of every door of SITE as JSON lines")
    ev.add_argument("--count", type=int, metavar="N", help="stop after N events")
    ev.add_argument("--status", action="store_true", help="also print door status messages")
    ev.add_argument("--session", metavar="ID", help="a persistent session with this client id: the broker keeps "
                    "the events that arrive while this follower is away (QoS 1); with the shipped broker "
                    "configuration the session is the collector account's, whatever the id")
    for p in (pub, ref, ev):
        p.add_argument("--broker", required=True, metavar="URL", help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        p.add_argument("--site", required=True, help="site name")
        p.add_argument("--prefix", default="edgeface", help="topic prefix (default: edgeface)")
        p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (events: stop)")
        p.add_argument("--username", help="broker user name (desk, collector)")
        p.add_argument("--password-file", metavar="FILE", help="file holding the broker password (default: "
                       "$CREDENTIALS_DIRECTORY/mqtt-password when present)")
        p.add_argument("--ca-file", metavar="FILE", help="CA certificate of the broker (TLS)")
        p.add_argument("--cert-file", metavar="FILE", help="client certificate (PEM)")
        p.add_argument("--key-file", metavar="FILE", help="key of the client certificate")
    br = sub.add_parser("broker", help="write the Mosquitto ACL, password file and per-account credential files")
    br.add_argument("--out", required=True, metavar="DIR", help="folder for acl, passwd and credentials/")
    br.add_argument("--door", action="append", default=[], metavar="SITE/DOOR", help="a door (repeatable)")
    br.add_argument("--prefix", default="edgeface", help="topic prefix (default: edgeface)")


def _client(args, **kw):
    from pathlib import Path

    from edgeface.config import FleetConfig
    from edgeface.device.fleet.mqtt_client import MqttClient
    from edgeface.errors import ConfigError
    from edgeface.fileutil import systemd_credential

    password_file = args.password_file
    if password_file is None:
        password_file = systemd_credential("mqtt-password")
    try:
        fleet = FleetConfig(broker=args.broker, site=args.site, door="desk", topic_prefix=args.prefix,
                            username=args.username, password_file=password_file and Path(password_file),
                            ca_file=args.ca_file and Path(args.ca_file), cert_file=args.cert_file and Path(args.cert_file),
                            key_file=args.key_file and Path(args.key_file))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"fleet {args.action}: {exc}") from None
    return fleet, MqttClient.from_config(fleet, getattr(args, "session", None) or "", **kw)


def run(args) -> int:
    if args.action in ("publish", "refresh"):
        return _publish(args)
    if args.action == "broker":
        return _broker(args)
    return _events(args)


def door_list(text: str | None) -> list[str] | None:
    """``--doors a,b``: the doors a signed list is for, or None (every door of its site)."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


def duration_option(text, what):
    """A duration option (``7d``, ``12h``, ...) in seconds, None when not given; a bad one is a one-line error."""
    from edgeface.device.fleet.signing import parse_duration
    from edgeface.errors import EdgefaceError

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise EdgefaceError(f"{what}: {exc}") from None


def _publish(args) -> int:
    from edgeface.device.fleet.keys import load_private_key
    from edgeface.device.fleet.publisher import publish_fresh, publish_gallery
    from edgeface.device.fleet.signing import read_gallery_bytes, utc

    key = load_private_key(args.key)
    read_gallery_bytes(args.gallery)  # a missing gallery is said before connecting
    doors = door_list(args.doors)
    valid = duration_option(args.valid_for, "--valid-for")
    fleet, client = _client(args)
    timeout = args.timeout or 30.0
    from edgeface.device.fleet.mqtt_client import BrokerError

    client.start()
    try:
        client.wait_connected(timeout)
        if args.action == "publish":
            doc = publish_gallery(client, args.gallery, key, fleet.topic_prefix, fleet.site, timeout, doors=doors,
                                  valid_for_s=valid, fresh_valid_for_s=duration_option(args.fresh_valid_for,
                                                                                 "--fresh-valid-for"))
        else:
            doc = publish_fresh(client, args.gallery, key, fleet.topic_prefix, fleet.site, timeout, doors=doors,
                                valid_for_s=valid)
    except (RuntimeError, ValueError, OSError) as exc:  # paho: the connection went away mid-publish
        raise BrokerError(f"publishing to {args.broker} failed: {exc} (the doors keep the gallery they have; "
                          "publish again)") from None
    finally:
        client.stop()
    st = doc.statement
    what = "published" if args.action == "publish" else "vouched for"
    print(f"{what} {args.gallery} version {st.gallery_version} ({st.size} bytes, key {doc.key_id}) for "
          f"{fleet.topic_prefix}/{fleet.site}{'' if st.doors is None else ' doors ' + ','.join(st.doors)}, "
          f"valid until {utc(st.expires)}")
    return 0


def _broker(args) -> int:
    from edgeface.device.fleet.broker import write_broker_files

    files = write_broker_files(args.out, args.door, args.prefix)
    print(f"wrote {args.out}/acl and {args.out}/passwd (give both to the mosquitto user: chown mosquitto:)")
    for account, path in files.items():
        print(f"  {account:<24} {path}")
    print("copy each door's file to that door ([fleet] username = SITE/DOOR, password_file = ...); the desk's and "
          "the collector's stay on the desk (the collector's account name is random: keep it private too)")
    return 0


def _events(args) -> int:
    import json
    import queue
    import sys
    import time

    from edgeface.device.fleet.publisher import EventFollower
    from edgeface.device.fleet.topics import all_events, all_status

    follower, inbox = EventFollower(prefix=args.prefix), queue.SimpleQueue()
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
            event = follower.accept(payload, topic)
            for site, door, missing in follower.new_gaps:
                print(json.dumps({"seq_gap": {"site": site, "door": door, "missing": missing}}), flush=True)
            if event is not None:
                print(json.dumps(event), flush=True)
                shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.stop()
    s = follower.stats
    gaps = follower.gaps()
    print(f"{shown} events; {s['duplicates']} duplicates, {s['malformed']} malformed and {s['mismatched']} events "
          f"whose topic and payload disagree dropped; {s['gaps']} seq numbers missing"
          + (f" ({'; '.join(f'{k}: {v[:10]}' for k, v in gaps.items())})" if gaps else ""), file=sys.stderr)
    return 0


def _json(payload: bytes) -> dict:
    import json

    try:
        doc = json.loads(payload)
        return doc if isinstance(doc, dict) else {"payload": doc}
    except ValueError:
        return {"malformed": len(payload)}
