"""The door keeps its frame rate while the admin page is attacked (issue 23): a real ``edgeface admin`` (uvicorn,
its own process, as the unit runs it) beside ``edgeface gate --simulate --realtime`` on the same machine.

Phases, each one run of the gate over the same door clip (3 employees, 2 strangers, real faces), alternating,
``--rounds`` times for each of two admin configs:

* ``quiet``: the gate alone (the admin page idle, its model loaded by one real enrollment check);
* ``flood``: ``--concurrency`` clients logging in without pause for the whole run: known names (``admin``,
  ``alice``) with wrong passwords and unknown names, each attempt from another source address (127.1.x.y: a
  botnet, so the per-address limit never helps), while the gate runs. The clients run at niceness 19 (an
  attacker's CPU is elsewhere; on the same 2 cores they must not be what slows the door);
* the two configs: the default login limits, and the loosest (``max_failed_logins = 100``), so that known names
  keep being hashed for the whole run.

Reported per phase: the gate's processed frames, frame->decision p50/p95 (its closing summary), employees let in,
the admin page's peak RSS (sampled every 20 ms from /proc, and its VmHWM), the login answers by status. Then the
uploads: a 30000 x 30000 PNG bomb (with Content-Length; also as a fresh page's first photo), a 4898 x 4898 grey
PNG (24 Mpx, the most a photo may have: decoded in full) and a 300 MiB chunked body without Content-Length,
each: the status, the time to the answer, the peak RSS, the most the page's temp folder held (its open spool
files, read through /proc/PID/fd).

    nice -n 5 .venv/bin/python bench/admin_flood.py --out bench/results/admin_flood.json

``--edgeface`` runs another installation's ``edgeface`` (e.g. the code before the fix) with ``--old-config``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from gatekit import Appearance, compose_video, enroll, make_bundle  # noqa: E402
from hostilekit import png_bomb  # noqa: E402

from edgeface.detect import create_detector  # noqa: E402

from sharedpaths import FACES, YUNET  # noqa: E402
from sharedpaths import REFERENCE_ONNX as REFERENCE  # noqa: E402
PASSWORD = "correct horse battery"
EMPLOYEES = ("s1", "s2", "s3")


def photo(ident: str, i: int) -> Path:
    return sorted((FACES / "orl" / ident).iterdir())[i]


def prepare(work: Path, port: int, loose: bool, old: bool) -> dict:
    """Bundle, gallery, clip, config and accounts under ``work`` (the first three made once)."""
    work.mkdir(parents=True, exist_ok=True)
    bundle, gallery, clip = work / "bundle", work / "people.gallery", work / "door.avi"
    if not (bundle / "edgeface.json").exists():
        make_bundle(bundle, REFERENCE, 0.40)
    if not gallery.exists():
        enroll(gallery, bundle, create_detector("yunet", YUNET), {p: photo(p, 0) for p in EMPLOYEES})
    if not clip.exists():
        apps = [Appearance("s1", photo("s1", 2), 2.0, 260, (0.2, 0.3), (0.5, 0.4)),
                Appearance("stranger", photo("s20", 1), 1.5, 250, (0.7, 0.3), (0.5, 0.4)),
                Appearance("s2", photo("s2", 3), 2.0, 240, (0.8, 0.5), (0.5, 0.4)),
                Appearance("stranger", photo("s21", 2), 1.5, 250, (0.3, 0.4), (0.5, 0.4)),
                Appearance("s3", photo("s3", 1), 3.0, 280, (0.5, 0.4), (0.5, 0.35))]
        compose_video(clip, apps, fps=10.0, gap_s=2.0)  # gaps longer than face_gap_s: one track each
    name = "loose" if loose else "default"
    admin = work / f"admin-{name}"
    if admin.exists():
        shutil.rmtree(admin)
    limits = "max_failed_logins = 100\n" + ("" if old else "max_failed_logins_per_address = 1000\n") if loose else ""
    config = work / f"gate-{name}.toml"
    config.write_text(f"""
[model]
bundle = "{bundle}"
gallery = "{gallery}"
key = "onnx_fp32"
threads = 1
[camera]
source = "{clip}"
[detector]
kind = "yunet"
model_path = "{YUNET}"
[policy]
max_fps = 15
[relay]
backend = "mock"
pulse_s = 0.5
[audit]
path = "{work / 'audit.db'}"
[admin]
accounts = "{admin / 'accounts.json'}"
log = "{admin / 'admin.db'}"
{limits}""")
    from edgeface.device.admin.accounts import Accounts

    for user in ("admin", "alice", "bench"):
        Accounts(admin / "accounts.json").add(user, PASSWORD)
    return {"config": config, "clip": clip, "tmp": admin / "tmp", "port": port}


# -- the admin page as a process ------------------------------------------------------------------------------
class AdminProcess:
    def __init__(self, edgeface: list[str], door: dict):
        door["tmp"].mkdir(parents=True, exist_ok=True)
        self.port, self.tmp = door["port"], door["tmp"]
        env = {**os.environ, "TMPDIR": str(door["tmp"]), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([*edgeface, "admin", "--config", str(door["config"]), "--listen",
                                      f"127.0.0.1:{self.port}"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the admin page did not start")
        self.samples: list[tuple[float, float, int]] = []  # (time, RSS MiB, temp folder bytes)
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _drain(self):
        for _ in self.proc.stderr:
            pass

    def status(self, key: str) -> float:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"{key}:\s+(\d+) kB", text).group(1)) / 1024

    def nice(self) -> int:
        return int(Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])

    def spooled(self) -> int:
        """Bytes in the files the page holds open under its temp folder (Starlette spools uploads to unnamed
        O_TMPFILE files there, invisible in a listing: they are found through /proc/PID/fd)."""
        total = 0
        fds = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fds.iterdir() if fds.exists() else ():
            try:
                if os.readlink(fd).startswith(str(self.tmp)):
                    total += os.stat(fd).st_size
            except OSError:
                pass
        return total

    def _sample(self):
        while not self._stop.is_set():
            try:
                tmp = self.spooled()
            except OSError:
                tmp = 0
            try:
                self.samples.append((time.monotonic(), self.status("VmRSS"), tmp))
            except (OSError, AttributeError):
                return
            time.sleep(0.02)

    def peak(self, since: float) -> tuple[float, int]:
        s = [x for x in self.samples if x[0] >= since]
        return (max(r for _, r, _ in s), max(t for _, _, t in s)) if s else (0.0, 0)

    def stop(self):
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            source: str | None = None, timeout: float = 60.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        headers: dict = {}
        for k, v in r.getheaders():  # several Set-Cookie headers are joined with ", "
            headers[k.lower()] = f"{headers[k.lower()]}, {v}" if k.lower() in headers else v
        return r.status, headers, r.read()
    finally:
        conn.close()


def cookies_of(headers: dict) -> dict:
    out = {}
    for m in re.finditer(r"(?:^|, )(edgeface_\w+)=([^;]*)", headers.get("set-cookie", "")):
        out[m.group(1)] = m.group(2).strip('"')
    return {k: v for k, v in out.items() if v}


def login(port: int, user: str, password: str, source: str) -> tuple[int, dict]:
    status, headers, body = request(port, "GET", "/login", source=source)
    token = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
    jar = cookies_of(headers)
    form = f"csrf={token}&username={user}&password={password.replace(' ', '+')}".encode()
    status, headers, _ = request(port, "POST", "/login", form, {
        "content-type": "application/x-www-form-urlencoded",
        "cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}, source=source)
    return status, {**jar, **cookies_of(headers)}


def flood(port: int, stop: threading.Event, concurrency: int, codes: Counter, latencies: list) -> list:
    """``concurrency`` clients logging in without pause, each attempt from a new 127.1.x.y address."""
    counter = iter(range(10 ** 9))
    lock = threading.Lock()

    def worker(seed: int):
        try:  # the attacker's own CPU is not the door's to share: the clients run at the lowest priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass
        rng = random.Random(seed)
        while not stop.is_set():
            with lock:
                n = next(counter)
            source = f"127.1.{(n // 250) % 250}.{n % 250 + 1}"
            user = rng.choice(["admin", "alice", f"guest{rng.randrange(10 ** 6)}", f"user{rng.randrange(10 ** 6)}"])
            t0 = time.monotonic()
            try:
                status, _ = login(port, user, f"wrong-{rng.randrange(10 ** 9)}", source)
            except (OSError, http.client.HTTPException, AttributeError) as exc:
                status = type(exc).__name__
            with lock:
                codes[str(status)] += 1
                latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    return threads


# -- the gate -------------------------------------------------------------------------------------------------
def run_gate(edgeface: list[str], door: dict) -> dict:
    t0 = time.monotonic()
    out = subprocess.run([*edgeface, "gate", "--simulate", str(door["clip"]), "--config", str(door["config"]),
                          "--realtime"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    summary = next(e for e in events if e["event"] == "summary")
    granted = sorted({e["person"] for e in events if e["event"] == "granted"})
    return {"wall_s": round(time.monotonic() - t0, 1), "frames": summary["frames"],
            "p50_ms": summary["latency_ms"]["p50"], "p95_ms": summary["latency_ms"]["p95"],
            "employees_let_in": [p for p in granted if p in EMPLOYEES], "strangers_let_in":
            [p for p in granted if p not in EMPLOYEES], "exit": out.returncode}


def phase(name: str, edgeface: list[str], door: dict, admin: AdminProcess, concurrency: int = 0) -> dict:
    stop, codes, latencies = threading.Event(), Counter(), []
    since = time.monotonic()
    threads = flood(admin.port, stop, concurrency, codes, latencies) if concurrency else []
    if threads:
        time.sleep(1.0)  # the flood is under way before the door's run starts
    gate = run_gate(edgeface, door)
    stop.set()
    for t in threads:
        t.join(30)
    rss, _ = admin.peak(since)
    lat = sorted(latencies)
    result = {"phase": name, **gate, "admin_peak_rss_mib": round(rss, 1), "logins": dict(codes),
              "login_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
              "logins_per_s": round(len(lat) / max(1e-9, time.monotonic() - since), 1) if lat else None}
    print(json.dumps(result), flush=True)
    return result


# -- uploads --------------------------------------------------------------------------------------------------
def session(port: int) -> tuple[str, str]:
    status, jar = login(port, "bench", PASSWORD, "127.0.0.1")
    assert status == 303, status
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    _, _, body = request(port, "GET", "/people/add", headers={"cookie": cookie})
    return cookie, re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()


def multipart(token: str, name: str, filename: str, data: bytes = b"") -> tuple[bytes, bytes, bytes]:
    b = b"benchboundary42"
    head = (b"--" + b + b'\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode() + b"\r\n--" + b
            + b'\r\nContent-Disposition: form-data; name="name"\r\n\r\n' + name.encode() + b"\r\n--" + b
            + b'\r\nContent-Disposition: form-data; name="photo"; filename="' + filename.encode()
            + b'"\r\nContent-Type: image/png\r\n\r\n')
    return b, head + data, b"\r\n--" + b + b"--\r\n"


def upload_enroll_check(port: int, cookie: str, token: str) -> int:
    """One real enrollment check (loads the page's model, as an admin's first photo does)."""
    b, head, tail = multipart(token, "Bench Person", "p.png", photo("s30", 0).read_bytes())
    status, _, _ = request(port, "POST", "/people/add", head + tail,
                           {"content-type": f"multipart/form-data; boundary={b.decode()}", "cookie": cookie})
    return status


def upload_bomb(admin: AdminProcess, cookie: str, token: str, w: int = 30000, h: int = 30000) -> dict:
    bomb = png_bomb(w, h)
    b, head, tail = multipart(token, "Bomb", "bomb.png", bomb)
    since = time.monotonic()
    status, _, _ = request(admin.port, "POST", "/people/add", head + tail,
                           {"content-type": f"multipart/form-data; boundary={b.decode()}", "cookie": cookie})
    took = time.monotonic() - since
    time.sleep(0.2)
    rss, tmp = admin.peak(since)
    return {"upload": f"png bomb {w}x{h}", "bytes": len(bomb), "status": status, "answer_s": round(took, 3),
            "admin_peak_rss_mib": round(rss, 1), "tmp_peak_bytes": tmp}


def upload_chunked(admin: AdminProcess, cookie: str, token: str, total: int = 300 << 20) -> dict:
    """A chunked body of ``total`` bytes without Content-Length, sent by a thread as fast as the page takes it;
    the time is until the status line arrives."""
    b, head, tail = multipart(token, "Big", "big.png")
    sock = socket.create_connection(("127.0.0.1", admin.port))
    sock.sendall(b"POST /people/add HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: multipart/form-data; boundary=" + b + b"\r\nCookie: " + cookie.encode() + b"\r\n\r\n")
    sent = [0]

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    def sender():
        try:
            sock.sendall(chunk(head))
            block = chunk(b"\x00" * (1 << 20))
            while sent[0] < total:
                sock.sendall(block)
                sent[0] += 1 << 20
            sock.sendall(chunk(tail) + b"0\r\n\r\n")
        except OSError:
            pass

    since = time.monotonic()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    sock.settimeout(120)
    first = b""
    try:
        while b"\r\n" not in first:
            data = sock.recv(4096)
            if not data:
                break
            first += data
    except OSError:
        pass
    took = time.monotonic() - since
    sock.close()
    t.join(10)
    time.sleep(0.2)
    rss, tmp = admin.peak(since)
    status = first.split(b"\r\n", 1)[0].decode("latin-1")
    return {"upload": f"chunked {total >> 20} MiB, no Content-Length", "status": status, "answer_s": round(took, 3),
            "sent_mib_when_answered": round(sent[0] / (1 << 20), 1), "admin_peak_rss_mib": round(rss, 1),
            "tmp_peak_bytes": tmp}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeface-admin-flood"))
    ap.add_argument("--edgeface", nargs="+", default=[str(Path(sys.executable).with_name("edgeface"))])
    ap.add_argument("--old-config", action="store_true", help="no config keys the code before issue 23 lacks")
    ap.add_argument("--concurrency", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3, help="quiet/flood pairs per admin config")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--skip-uploads", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    report = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs", "edgeface": args.edgeface,
              "concurrency": args.concurrency, "phases": [], "uploads": []}
    for loose in (False, True):
        door = prepare(args.work, args.port + loose, loose, args.old_config)
        admin = AdminProcess(args.edgeface, door)
        try:
            report.setdefault("admin_nice", admin.nice())
            cookie, token = session(admin.port)
            report.setdefault("admin_rss_idle_mib", round(admin.status("VmRSS"), 1))
            if not loose and not args.skip_uploads:  # the bomb as a fresh page's first photo: no model loaded yet
                r = {**upload_bomb(admin, cookie, token), "when": "first photo after start"}
                print(json.dumps(r), flush=True)
                report["uploads"].append(r)
            assert upload_enroll_check(admin.port, cookie, token) in (200, 422)
            report.setdefault("admin_rss_model_loaded_mib", round(admin.status("VmRSS"), 1))
            limits = "loose limits (max_failed_logins 100)" if loose else "default limits"
            for _ in range(args.rounds):
                report["phases"].append(phase(f"quiet, {limits}", args.edgeface, door, admin))
                report["phases"].append(phase(f"flood, {limits}", args.edgeface, door, admin, args.concurrency))
            if not loose and not args.skip_uploads:
                cookie, token = session(admin.port)
                # the bomb; the largest picture a photo may be (24 Mpx, a few KB of grey PNG: decoded in full); 300 MiB
                for fn in (upload_bomb, lambda *a: upload_bomb(*a, 4898, 4898), upload_chunked):
                    r = fn(admin, cookie, token)
                    print(json.dumps(r), flush=True)
                    report["uploads"].append(r)
            report.setdefault("admin_vmhwm_mib", {})[limits] = round(admin.status("VmHWM"), 1)
        finally:
            admin.stop()
    import statistics

    summary = {}
    for limits in ("default limits", "loose limits (max_failed_logins 100)"):
        q = [p for p in report["phases"] if p["phase"] == f"quiet, {limits}"]
        f = [p for p in report["phases"] if p["phase"] == f"flood, {limits}"]
        if not q or not f:
            continue
        mq, mf = statistics.median(p["p95_ms"] for p in q), statistics.median(p["p95_ms"] for p in f)
        summary[limits] = {
            "quiet_p95_ms": [p["p95_ms"] for p in q], "flood_p95_ms": [p["p95_ms"] for p in f],
            "median_p95_flood_over_quiet": round(mf / mq, 2),
            "each_flood_over_the_quiet_run_before": [round(b["p95_ms"] / a["p95_ms"], 2) for a, b in zip(q, f)],
            "frames_quiet": [p["frames"] for p in q], "frames_flood": [p["frames"] for p in f],
            "employees_let_in_quiet": [len(p["employees_let_in"]) for p in q],
            "employees_let_in_flood": [len(p["employees_let_in"]) for p in f],
            "admin_peak_rss_mib_flood": max(p["admin_peak_rss_mib"] for p in f)}
    report["summary"] = summary
    print(json.dumps({k: v for k, v in report.items() if k not in ("phases", "uploads")}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
