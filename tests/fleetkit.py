"""Test helpers for the fleet: a real Mosquitto on 127.0.0.1 and a random free port (persistent, so retained
messages and sessions survive a kill -9 and restart), a collector that follows a site like
``edgeface fleet events`` does, and door processes (tests/fleet_door.py) running the real daemon."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                               if os.path.exists(p)), None)
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, root: Path) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; scripts/setup.sh does it)")
        self.root = root
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        # started as root, mosquitto drops to the "mosquitto" user unless told to stay who we are
        self.conf.write_text(f"""user {getpass.getuser()}
listener {self.port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {root}/
autosave_interval 1
log_dest file {root}/mosquitto.log
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.root / 'mosquitto.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def kill(self) -> None:
        """kill -9: no goodbye to anyone; what it had not autosaved is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Collector:
    """Follows every door's events and status of a site (a persistent session, like ``fleet events
    --session``), removing duplicates by id as :class:`EventFollower` does; keeps the raw counts too."""

    def __init__(self, broker: str, site: str, prefix: str = "edgeface") -> None:
        from edgeface.device.fleet.mqtt_client import MqttClient
        from edgeface.device.fleet.publisher import EventFollower
        from edgeface.device.fleet.topics import all_events, all_status

        self.follower = EventFollower()
        self.events: list[dict] = []
        self.status: dict[str, dict] = {}
        self.raw = Counter()
        self.lock = threading.Lock()
        self.client = MqttClient(broker, f"collector-{site}", retry_initial_s=0.2, retry_max_s=1.0,
                                 subscriptions=((all_events(prefix, site), 1), (all_status(prefix, site), 1)),
                                 on_message=self._on_message, clean_session=False)

    def start(self) -> "Collector":
        self.client.start().wait_connected(10)
        return self

    def _on_message(self, topic: str, payload: bytes) -> None:
        with self.lock:
            if topic.endswith("/status"):
                self.status[topic.split("/")[-2]] = json.loads(payload)
                return
            try:
                self.raw[json.loads(payload)["id"]] += 1
            except (ValueError, KeyError, TypeError):
                pass
            event = self.follower.accept(payload)
            if event is not None:
                self.events.append(event)

    def of(self, door: str, kind: str | None = None, after_seq: int = 0) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e.get("door") == door and (kind is None or e["event"] == kind)
                    and e["seq"] > after_seq]

    def by_door(self) -> dict[str, list[dict]]:
        out = defaultdict(list)
        with self.lock:
            for e in self.events:
                out[e["door"]].append(e)
        return out

    def stop(self) -> None:
        self.client.stop()


def door_config(path: Path, *, bundle: Path, gallery: Path, public_key: Path, video: Path, yunet: Path,
                broker: str, site: str, door: str, max_gallery_mb: float = 0.25) -> Path:
    path.write_text(f"""
[model]
bundle = "{bundle}"
gallery = "{gallery}"
gallery_public_key = "{public_key}"
key = "onnx_fp32"
threads = 1

[camera]
source = "{video}"

[detector]
kind = "yunet"
model_path = "{yunet}"

[policy]
k = 2
n = 3
min_margin = 0.05
cooldown_s = 0.5
face_gap_s = 0.8
max_fps = 3.0
lockout_unknown = 1000  # the removed person keeps walking up: stay deciding, not locked out

[relay]
backend = "mock"
pulse_s = 0.2

[audit]
path = "{path.parent / 'audit.db'}"

[fleet]
broker = "{broker}"
site = "{site}"
door = "{door}"
keepalive_s = 5
retry_initial_s = 0.2
retry_max_s = 1.0
queue_path = "{path.parent / 'outbox.db'}"
max_gallery_mb = {max_gallery_mb}
""")
    return path


def start_door(config: Path) -> subprocess.Popen:
    log = open(config.parent / "door.log", "w")
    return subprocess.Popen([sys.executable, str(HERE / "fleet_door.py"), str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))


def wait_for(predicate, timeout_s: float = 30.0, every_s: float = 0.05) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every_s)
    return bool(predicate())
