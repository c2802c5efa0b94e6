"""Every hostile command of issue 23, run as a person would run it, each as its own process: its exit code, and
whether stderr holds a Python traceback. The count of tracebacks must be 0.

A door (the reference model, one enrolled face, a clip) is made under ``--work``; then: validate-config and the
gate on each broken config (pins used twice or impossible, a Wiegand reader without a GPIO library, infinite
numbers), ``gate --simulate`` on garbage / empty / header-only videos and empty or junk folders, ``--clock`` at
skipped and repeated local times, ``people`` with forged, control-character and 10 KB names and unknown names,
``enroll`` of files whose names are not names and of GIF / TIFF / cut JPEG photos, ``seal-bundle`` on insane
thresholds, ``fleet publish`` with no broker and with the broker killed mid-publish.

    .venv/bin/python bench/hostile_commands.py --out bench/results/hostile_commands.json

``--edgeface`` runs another installation's command (the code before the fix, to compare).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from gatekit import compose_video, enroll, make_bundle, write_config  # noqa: E402
from hostilekit import as_format, cut_jpeg  # noqa: E402

from edgeface.detect import create_detector  # noqa: E402
from edgeface.device.scene import Appearance  # noqa: E402

from sharedpaths import FACES, YUNET  # noqa: E402
from sharedpaths import REFERENCE_ONNX as REFERENCE  # noqa: E402


def door(work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    bundle, gallery, clip = work / "bundle", work / "people.gallery", work / "door.avi"
    if not (bundle / "edgeface.json").exists():
        make_bundle(bundle, REFERENCE, 0.40)
    if not gallery.exists():
        enroll(gallery, bundle, create_detector("yunet", YUNET), {"Ada": sorted((FACES / "orl" / "s1").iterdir())[0]})
    if not clip.exists():
        compose_video(clip, [Appearance("s1", sorted((FACES / "orl" / "s1").iterdir())[2], 1.5, 260, (0.4, 0.3),
                                        (0.5, 0.4))], fps=10.0, gap_s=1.0)
    return {"bundle": bundle, "gallery": gallery, "clip": clip}


def commands(work: Path, d: dict) -> list[tuple[str, list[str], dict]]:
    """(label, argv after 'edgeface', options) for every command to try."""
    base = '[relay]\nbackend = "mock"\n'
    configs = {
        "feedback denied_pin = relay pin": '[access.feedback]\ndenied_pin = 17\n',
        "door exit_pin = relay pin": '[access.door]\nexit_pin = 17\n',
        "wiegand d0_pin = d1_pin": '[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 5\nd1_pin = 5\n',
        "wiegand d0_pin = 999": '[access]\nmode = "face_or_badge"\n[access.wiegand]\nd0_pin = 999\nd1_pin = 6\n',
        "door contact = tamper pin": '[access.door]\ncontact_pin = 22\ntamper_pin = "GPIO22"\n',
        "fleet max_gallery_mb = inf": '[fleet]\nbroker = "mqtt://127.0.0.1:1"\nsite = "hq"\ndoor = "d1"\n'
                                      'max_gallery_mb = inf\n',
        "admin login_window_s = inf": '[admin]\nlogin_window_s = inf\n',
        "audit retention_days = nan": '[audit]\nretention_days = nan\n',
        "access pin_window_s = inf": '[access]\npin_window_s = inf\n',
    }
    gpio = {"wiegand without a GPIO library": '[relay]\nbackend = "gpiozero"\n[access]\nmode = "face_or_badge"\n'
                                              '[access.wiegand]\nd0_pin = 5\nd1_pin = 6\n',
            "gpiozero relay without a GPIO library": '[relay]\nbackend = "gpiozero"\n'}
    out = []
    for i, (label, extra) in enumerate([*((k, base + v) for k, v in configs.items()), *gpio.items()]):
        path = write_config(work / f"bad{i}.toml", d["bundle"], d["gallery"], d["clip"], YUNET, extra)
        out += [(f"validate-config: {label}", ["validate-config", str(path)], {}),
                (f"gate --config: {label}", ["gate", "--config", str(path)], {})]
    rng = os.urandom(100_000)
    (work / "garbage.avi").write_bytes(rng)
    (work / "empty.avi").write_bytes(b"")
    (work / "header.avi").write_bytes(d["clip"].read_bytes()[:4096])
    (work / "empty_folder").mkdir(exist_ok=True)
    (work / "junk_folder").mkdir(exist_ok=True)
    (work / "junk_folder" / "a.jpg").write_bytes(rng[:1000])
    sim = ["--bundle", str(d["bundle"]), "--gallery", str(d["gallery"])]
    for name in ("garbage.avi", "empty.avi", "header.avi", "empty_folder", "junk_folder", "no_such.avi"):
        out.append((f"gate --simulate {name}", ["gate", "--simulate", str(work / name), *sim], {}))
    for clock in ("2026-03-29T02:30", "2026-10-25T02:30", "2026-13-01T00:00"):
        cfg = write_config(work / "berlin.toml", d["bundle"], d["gallery"], d["clip"], YUNET,
                           base + '[access]\ntimezone = "Europe/Berlin"\n')
        out.append((f"gate --simulate --clock {clock}", ["gate", "--simulate", str(d["clip"]), "--config", str(cfg),
                                                         "--clock", clock], {}))
    g = ["--gallery", str(work / "names.gallery")]
    out += [("people rename to a forged line", ["people", *g, "rename", "Ada", "Ada\nBob   fake-id   1 embedding(s)"], {}),
            ("people rename to ESC + NUL", ["people", *g, "rename", "Ada", "Ada\x1b[31m\x0b\x0c\x85\u2028"], {}),
            ("people rename to 10 KB", ["people", *g, "rename", "Ada", "A" * 10_000], {}),
            ("people remove an unknown name", ["people", *g, "remove", "Nobody\x1b[2J"], {}),
            ("people set an unknown name", ["people", *g, "set", "Nobody", "--badge", "1"], {}),
            ("people list (a forged name inside)", ["people", *g, "list"], {"forge": True})]
    photos = work / "photos"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir()
    jpeg = sorted((FACES / "celeba-loose" / "07201").glob("*.jpg"))[0].read_bytes()
    (photos / "Cut.jpg").write_bytes(cut_jpeg(jpeg))
    (photos / "Gif.jpg").write_bytes(as_format(jpeg, "GIF"))
    (photos / "Tiff.jpg").write_bytes(as_format(jpeg, "TIFF"))
    (photos / "Scan.tiff").write_bytes(as_format(jpeg, "TIFF"))
    (photos / "Ada\x1b[31m.jpg").write_bytes(jpeg)
    out.append(("enroll GIF / TIFF / cut JPEG / an ESC in a file name",
                ["enroll", "--bundle", str(d["bundle"]), "--photos", str(photos), "--gallery",
                 str(work / "enrolled.gallery"), "--detector-model", str(YUNET)], {}))
    for label, edit in (("seal-bundle: threshold -0.5", {"value": -0.5}), ("seal-bundle: far 0", {"far": 0}),
                        ("seal-bundle: far 1.5", {"far": 1.5})):
        out.append((label, ["seal-bundle", str(work / "seal_bundle")], {"seal": edit}))
    out.append(("fleet publish: no broker", ["fleet", "publish", "--gallery", str(d["gallery"]), "--key",
                                             str(work / "keys" / "gallery_signing.key"), "--broker",
                                             "mqtt://127.0.0.1:1", "--site", "hq", "--timeout", "2"], {}))
    out.append(("fleet publish: broker killed mid-publish", ["fleet", "publish", "--gallery", str(work / "big.gallery"),
                                                             "--key", str(work / "keys" / "gallery_signing.key"),
                                                             "--broker", "BROKER", "--site", "hq", "--timeout", "20"],
                {"kill_broker": True}))
    return out


def prepare(work: Path, d: dict, edgeface: list[str]) -> None:
    import numpy as np

    from edgeface.gallery import Gallery

    g = Gallery.load(d["gallery"])
    g.save(work / "names.gallery")
    if not (work / "keys" / "gallery_signing.key").exists():
        subprocess.run([*edgeface, "keys", "generate", "--out", str(work / "keys")], check=True, capture_output=True)
    if not (work / "big.gallery").exists():
        big = Gallery.new("f" * 64, 512)
        rng = np.random.default_rng(0)
        for i in range(100):
            big.add(f"P{i}", rng.standard_normal((100, 512)))
        big.save(work / "big.gallery")


def run_one(edgeface: list[str], argv: list[str], opts: dict, work: Path, d: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "EDGEFACE_YUNET": str(YUNET)}
    if opts.get("forge"):
        from edgeface.gallery import Gallery

        g = Gallery.load(work / "names.gallery")
        g.people[0].name = "Ada\nEve   forged-id   9 embedding(s)  updated 2026-01-01\x1b[2J"
        g.save(work / "names.gallery")
    if "seal" in opts:
        shutil.rmtree(work / "seal_bundle", ignore_errors=True)
        shutil.copytree(d["bundle"], work / "seal_bundle")
        meta = work / "seal_bundle" / "edgeface.json"
        raw = json.loads(meta.read_text())
        raw["thresholds"]["onnx_fp32"].update(opts["seal"])
        meta.write_text(json.dumps(raw))
    if opts.get("kill_broker"):
        sys.path.insert(0, str(ROOT / "tests"))
        from fleetkit import Mosquitto

        broker = Mosquitto(work / "mqtt").start()
        log = work / "mqtt" / "mosquitto.log"
        argv = [broker.url if a == "BROKER" else a for a in argv]
        seen = log.read_text().count("New client connected") if log.exists() else 0
        p = subprocess.Popen([*edgeface, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while (log.read_text().count("New client connected") if log.exists() else 0) <= seen:
            if time.monotonic() > deadline or p.poll() is not None:
                break
            time.sleep(0.01)
        broker.proc.send_signal(signal.SIGKILL)
        broker.proc.wait(10)
        out, err = p.communicate(timeout=120)
        return subprocess.CompletedProcess(argv, p.returncode, out, err)
    return subprocess.run([*edgeface, *argv], capture_output=True, text=True, timeout=300, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgeface-hostile-commands"))
    ap.add_argument("--edgeface", nargs="+", default=[str(Path(sys.executable).with_name("edgeface"))])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    d = door(args.work)
    prepare(args.work, d, args.edgeface)
    results = []
    for label, argv, opts in commands(args.work, d):
        r = run_one(args.edgeface, argv, opts, args.work, d)
        tb = "Traceback (most recent call last)" in r.stderr
        last = (r.stderr.strip().splitlines() or [""])[-1][:160]
        results.append({"command": label, "exit": r.returncode, "traceback": tb, "stderr_last_line": last})
        print(f"{'TRACEBACK' if tb else 'ok':9} exit {r.returncode:3}  {label}: {last}", flush=True)
    summary = {"commands": len(results), "tracebacks": sum(r["traceback"] for r in results),
               "edgeface": args.edgeface, "results": results}
    print(f"{summary['tracebacks']} tracebacks in {summary['commands']} commands")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
