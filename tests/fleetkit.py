"""Test helpers for the fleet: a real Mosquitto on 127.0.0.1 and a random free port (persistent, so retained
messages and sessions survive a kill -9 and restart), either open to anyone or running the shipped
``systemd/mosquitto/edgeface.conf`` (TLS with a CA made here, the ACL and passwords made by ``edgeface fleet
broker``); a TCP proxy that cuts one door off the broker and lets it back; a collector that follows a site like
``edgeface fleet events`` does; and door processes (tests/fleet_door.py) running the real daemon."""

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


SHIPPED_CONF = HERE.parent / "systemd" / "mosquitto" / "edgeface.conf"


class Mosquitto:
    """``shipped=False``: open to anyone (the protocol tests). ``shipped=True``: the shipped configuration with
    only its folders and port rewritten; ``doors`` (SITE/DOOR) get accounts from ``edgeface fleet broker``."""

    def __init__(self, root: Path, shipped: bool = False, doors: tuple[str, ...] = ()) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto; scripts/setup.sh does it)")
        self.root = root
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.ca_file: Path | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        # started as root, mosquitto drops to the "mosquitto" user unless told to stay who we are
        common = f"""user {getpass.getuser()}
persistence true
persistence_location {root}/
autosave_interval 1
log_dest file {root}/mosquitto.log
"""
        if not shipped:
            self.conf.write_text(common + f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        else:
            self._shipped(common, doors)
        self.proc: subprocess.Popen | None = None

    def _shipped(self, common: str, doors) -> None:
        from edgeface.cli import main

        root = self.root
        text = SHIPPED_CONF.read_text()
        rewrites = {"/etc/mosquitto/edgeface/": f"{root}/edgeface/", "/etc/mosquitto/certs/": f"{root}/certs/",
                    "\nlistener 8883\n": f"\nlistener {self.port} 127.0.0.1\n"}
        for old, new in rewrites.items():
            assert old in text, f"the shipped {SHIPPED_CONF.name} has no {old.strip()!r} any more"
            text = text.replace(old, new)
        (root / "conf.d").mkdir(exist_ok=True)
        (root / "conf.d" / "edgeface.conf").write_text(text)
        self.conf.write_text(common + f"include_dir {root}/conf.d\n")
        self.ca_file = make_tls(root / "certs")
        args = ["fleet", "broker", "--out", str(root / "edgeface")]
        for d in doors:
            args += ["--door", d]
        assert main(args) == 0
        self.url = f"mqtts://127.0.0.1:{self.port}"

    def credential(self, account: str) -> Path:
        return self.root / "edgeface" / "credentials" / (account.replace("/", ".") + ".password")

    @property
    def collector(self) -> str:
        """The collector's (random) account name, as ``edgeface fleet broker`` made it."""
        from edgeface.device.fleet.broker import collector_account

        return collector_account(self.root / "edgeface" / "credentials")

    def client(self, account: str | None, client_id: str = "", url: str | None = None, **kw):
        """An MqttClient logged in as ``account`` (None: no user name at all)."""
        from edgeface.device.fleet.mqtt_client import MqttClient

        password = None if account is None else self.credential(account).read_text().strip()
        kw.setdefault("retry_initial_s", 0.2)
        kw.setdefault("retry_max_s", 1.0)
        return MqttClient(url or self.url, client_id, username=account, password=password, ca_file=self.ca_file, **kw)

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
    --session``), removing duplicates by id and refusing events whose topic and payload disagree as
    :class:`EventFollower` does; keeps the raw counts too. ``broker``: a URL, or a shipped :class:`Mosquitto`
    (then it logs in as ``collector``)."""

    def __init__(self, broker, site: str, prefix: str = "edgeface", more_sites: tuple[str, ...] = ()) -> None:
        from edgeface.device.fleet.mqtt_client import MqttClient
        from edgeface.device.fleet.publisher import EventFollower
        from edgeface.device.fleet.topics import all_events, all_status

        try:
            self.follower = EventFollower(prefix=prefix)
        except TypeError:  # the follower before issue 22 knew no topics
            self.follower = EventFollower()
        self.events: list[dict] = []
        self.status: dict[str, dict] = {}
        self.status_log: list[tuple[str, dict]] = []  # every status message: (topic, document)
        self.raw = Counter()
        self.lock = threading.Lock()
        subs = [(topic(prefix, x), 1) for x in (site, *more_sites) for topic in (all_events, all_status)]
        kw = dict(subscriptions=tuple(subs), on_message=self._on_message, clean_session=False)
        if isinstance(broker, Mosquitto):
            self.client = broker.client(broker.collector, f"collector-{site}", **kw)
        else:
            self.client = MqttClient(broker, f"collector-{site}", retry_initial_s=0.2, retry_max_s=1.0, **kw)

    def start(self) -> "Collector":
        self.client.start().wait_connected(10)
        return self

    def _on_message(self, topic: str, payload: bytes) -> None:
        with self.lock:
            if topic.endswith("/status"):
                self.status[topic.split("/")[-2]] = json.loads(payload)
                self.status_log.append((topic, json.loads(payload)))
                return
            try:
                self.raw[json.loads(payload)["id"]] += 1
            except (ValueError, KeyError, TypeError):
                pass
            try:
                event = self.follower.accept(payload, topic)
            except TypeError:  # the follower before issue 22 took no topic
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
                broker: str, site: str, door: str, max_gallery_mb: float = 0.25, model_extra: str = "",
                fleet_extra: str = "") -> Path:
    path.write_text(f"""
[model]
bundle = "{bundle}"
gallery = "{gallery}"
gallery_public_key = "{public_key}"
key = "onnx_fp32"
threads = 1
{model_extra}

[camera]
source = "{video}"

[detector]
kind = "yunet"
model_path = "{yunet}"

[policy]
k = 2
n = 3
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
{fleet_extra}
""")
    return path


def start_door(config: Path) -> subprocess.Popen:
    log = open(config.parent / "door.log", "w")
    return subprocess.Popen([sys.executable, str(HERE / "fleet_door.py"), str(config)], stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))


def stop_doors(procs) -> None:
    """SIGTERM every door process still running, then wait for each (killed after 20 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except Exception:
            proc.kill()


def wait_for(predicate, timeout_s: float = 30.0, every_s: float = 0.05) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every_s)
    return bool(predicate())


def make_tls(folder: Path) -> Path:
    """A CA and the broker's certificate for 127.0.0.1 (``edgeface.crt`` / ``.key``, the shipped names); returns
    the CA file the clients trust."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeface test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "edgeface.crt").write_bytes(cert.public_bytes(pem))
    (folder / "edgeface.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                            serialization.NoEncryption()))
    os.chmod(folder / "edgeface.key", 0o600)
    return folder / "ca.crt"


class Proxy:
    """A TCP forwarder 127.0.0.1:port -> target port: a door connected through it can be cut off the broker
    (every connection closed, new ones refused) and let back, as a real network outage looks to it."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(8)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            if self._server is not srv:  # cut meanwhile
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        srv, self._server = self._server, None
        if srv is not None:
            try:
                srv.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not, on Linux)
            except OSError:
                pass
            srv.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


# -- the signing calls, so that the same tests also run against the code before issue 22 (site-less signatures),
# where they show what the issue found; with this tree they are simply the site-scoped calls
def sign_file_for(path, key, site: str):
    from edgeface.device.fleet import signing

    try:
        return signing.sign_file(path, key, site)
    except TypeError:
        return signing.sign_file(path, key)


def envelope_for(path, key, site: str):
    from edgeface.device.fleet.publisher import signed_envelope

    try:
        return signed_envelope(path, key, site)
    except TypeError:
        return signed_envelope(path, key)
