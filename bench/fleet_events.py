"""How many events per second one door's outbox delivers to a real Mosquitto (127.0.0.1), QoS 1, and what a
burst costs: N events queued at once through :class:`DoorLink` (SQLite outbox -> paho -> broker -> a follower),
timed until the follower has them all (duplicates removed by id).

    .venv/bin/python bench/fleet_events.py --events 5000

Writes bench/results/fleet_events.json. Needs mosquitto (Debian package) on the PATH or in /usr/sbin.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fleetkit import Collector, Mosquitto, wait_for  # noqa: E402

from edgeface.config import FleetConfig  # noqa: E402
from edgeface.device.events import Event  # noqa: E402
from edgeface.device.fleet.door_link import DoorLink  # noqa: E402
from edgeface.device.fleet.keys import generate_keypair  # noqa: E402


class QuietGate:
    """What DoorLink needs of a gate here: somewhere to post its connection events."""

    runtime = None

    def post_event(self, kind, detail):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fleet_events.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Mosquitto(tmp / "broker").start()
        try:
            _, public = generate_keypair(tmp / "keys")
            fleet = FleetConfig(broker=broker.url, site="bench", door="d1", queue_path=tmp / "outbox.db",
                                queue_max=args.events * 2)
            cfg = SimpleNamespace(fleet=fleet, model=SimpleNamespace(gallery=tmp / "g", gallery_public_key=public))
            collector = Collector(broker.url, "bench").start()
            link = DoorLink(cfg, QuietGate()).start()
            link.client.wait_connected(10)
            t0 = time.perf_counter()
            for i in range(args.events):
                link.record(Event("unknown", float(i), score=0.3, detail="bench"))
            queued_s = time.perf_counter() - t0
            assert wait_for(lambda: len(collector.events) >= args.events, 300, every_s=0.01)
            total_s = time.perf_counter() - t0
            link.stop()
            collector.stop()
        finally:
            broker.stop()
    row = {"events": args.events, "queue_put_per_s": args.events / queued_s, "delivered_per_s": args.events / total_s,
           "total_s": total_s, "duplicates": collector.follower.stats["duplicates"],
           "command": f"bench/fleet_events.py --events {args.events}"}
    print(json.dumps(row))
    args.out.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
