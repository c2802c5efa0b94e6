"""Signed galleries at fleet size: file size and the time to sign, verify and load synthetic galleries of 10k
and 100k people (random unit vectors; the time depends on the bytes, not on the faces), one thread, medians.

    .venv/bin/python bench/fleet_gallery.py --people 10000 100000 --dim 128 --per-person 1 --repeat 5

Stages, as a door runs them for one gallery message: ``unpack`` (split the MQTT envelope), ``verify`` (Ed25519
over the signed statement, sha256 over the whole file), ``parse`` (``Gallery.from_bytes``: sha256, header, finiteness), ``matcher`` (the cosine
matrix the gate searches), ``install`` (atomic write + fsync of the file, its signature and version record).
Writes bench/results/fleet_gallery.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from edgeface.device.fleet import signing  # noqa: E402
from edgeface.device.fleet.install import install_gallery  # noqa: E402
from edgeface.gallery import Gallery, Person  # noqa: E402
from edgeface.match import Matcher  # noqa: E402


def synthetic(people: int, dim: int, per_person: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(people * per_person, dim)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    g = Gallery("f" * 64, dim, [], version=7)
    now = "2026-01-01T00:00:00+00:00"
    g.people = [Person(f"p{i:06d}", f"Person {i:06d}", now, now, e[i * per_person:(i + 1) * per_person])
                for i in range(people)]
    return g.to_bytes()


def median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--per-person", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "fleet_gallery.json")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    rows = []
    for n in args.people:
        data = synthetic(n, args.dim, args.per_person)
        doc = signing.sign_bytes(data, key, "bench")
        payload = signing.pack_envelope(data, doc)
        g = Gallery.from_bytes(data)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "people.gallery"
            row = {
                "people": n, "embeddings_per_person": args.per_person, "dim": args.dim,
                "file_bytes": len(data), "envelope_bytes": len(payload),
                "sign_s": median_s(lambda: signing.sign_bytes(data, key, "bench"), args.repeat),
                "unpack_s": median_s(lambda: signing.unpack_envelope(payload), args.repeat),
                "verify_s": median_s(lambda: (signing.verify_doc(doc, public), hashlib.sha256(data).digest()), args.repeat),
                "parse_s": median_s(lambda: Gallery.from_bytes(data), args.repeat),
                "matcher_s": median_s(lambda: Matcher(g), args.repeat),
                "install_s": median_s(lambda: install_gallery(target, data, doc, g), args.repeat),
            }
        row["door_total_s"] = sum(row[k] for k in ("unpack_s", "verify_s", "parse_s", "matcher_s", "install_s"))
        rows.append(row)
        print(json.dumps(row))
    out = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                       "cpus": os.cpu_count(), "threads": 1},
           "command": "bench/fleet_gallery.py " + " ".join(f"--{k.replace('_', '-')} {v}" if not isinstance(v, list)
                                                           else f"--{k} " + " ".join(map(str, v))
                                                           for k, v in vars(args).items() if k != "out"),
           "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
