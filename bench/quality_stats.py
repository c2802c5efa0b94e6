"""Distribution of the quality measures on real faces (ORL, celeba-loose) and on degraded copies
(blurred, shrunk, turned), to calibrate the defaults of edgeface.config.QualityConfig.

    .venv/bin/python bench/quality_stats.py --per-identity 2 --identities 40
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgeface.align import align_face
from edgeface.config import QualityConfig
from edgeface.detect import create_detector
from edgeface.faces import largest_face
from edgeface.faceset import read_image, scan_identities
from edgeface.quality import assess

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGEFACE_SHARED", ROOT.parent / "shared"))


def degrade(img: np.ndarray, kind: str, landmarks: np.ndarray) -> np.ndarray:
    """A copy that a quality gate should reject, scaled to the face (``landmarks`` of the original):
    blurred (Gaussian, sigma = eye distance / 6), tiny (a fifth of the size, on a black canvas) or turned (the
    nose region pushed sideways by 0.6 eye distances, as a yaw of roughly 40 degrees moves the nose tip)."""
    eye = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), sigmaX=eye / 6)
    if kind == "tiny":
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(8, w // 5), max(8, h // 5)), interpolation=cv2.INTER_AREA)
        canvas = np.zeros_like(img)
        canvas[:small.shape[0], :small.shape[1]] = small
        return canvas
    if kind == "turned":
        h, w = img.shape[:2]
        nx, ny = landmarks[2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        bump = np.exp(-((xx - nx) ** 2 + (yy - ny) ** 2) / (2 * (0.45 * eye) ** 2))
        map_x = (xx - 0.6 * eye * bump).astype(np.float32)
        return cv2.remap(img, map_x, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    raise ValueError(kind)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--per-identity", type=int, default=3)
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--detector-model", type=Path, default=SHARED / "models/yunet/face_detection_yunet_2026may.onnx")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/quality_stats.json")
    ap.add_argument("--rows", action="store_true", help="also store every photo's report in the JSON")
    args = ap.parse_args()
    det = create_detector("yunet", args.detector_model)
    cfg = QualityConfig()
    rows = []
    for ds in ("orl", "celeba-loose"):
        photos = scan_identities(SHARED / "data/faces" / ds)
        by_id: dict[str, list] = {}
        for p in photos:
            by_id.setdefault(p.identity, []).append(p)
        chosen = [p for ident in sorted(by_id)[: args.identities] for p in by_id[ident][: args.per_identity]]
        for p in tqdm(chosen, desc=ds):
            img = read_image(p.path)
            first = largest_face(det.detect(img))
            for kind in ("original", "blur", "tiny", "turned"):
                if kind != "original" and first is None:
                    continue
                x = img if kind == "original" else degrade(img, kind, first.landmarks)
                dets = det.detect(x)
                face = largest_face(dets)
                crop = align_face(x, face.landmarks) if face is not None else None
                rep = assess(x, face, crop, cfg, dets)
                rows.append({"dataset": ds, "kind": kind, "path": str(p.path), **rep.to_json()})
    summary = {}
    for ds in ("orl", "celeba-loose"):
        for kind in ("original", "blur", "tiny", "turned"):
            sel = [r for r in rows if r["dataset"] == ds and r["kind"] == kind]
            ms = {}
            for key in ("eye_distance_px", "face_px", "score", "sharpness", "nose_offset", "eye_mouth_asymmetry"):
                v = np.array([r["measures"][key] for r in sel if key in r["measures"]], float)
                if len(v):
                    ms[key] = {q: round(float(np.percentile(v, q)), 3) for q in (1, 5, 50, 95, 99)}
            codes: dict[str, int] = {}
            for r in sel:
                for c in r["codes"]:
                    codes[c] = codes.get(c, 0) + 1
            summary[f"{ds}/{kind}"] = {"n": len(sel), "pass_rate": round(float(np.mean([r["ok"] for r in sel])), 3),
                                        "rejections": codes, "percentiles": ms}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"config": cfg.model_dump(), "summary": summary}
    if args.rows:
        out["rows"] = rows
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    plot(rows, args.out.with_suffix(".png"), cfg)
    for key, v in summary.items():
        print(f"{key:24s} n={v['n']:4d} pass {v['pass_rate']:.3f} {v['rejections']}")
    return 0


def plot(rows: list[dict], path: Path, cfg: QualityConfig) -> None:
    """Sharpness and nose offset of originals against the degraded copies, with the configured limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, (key, limit, log) in zip(axes, (("sharpness", cfg.min_sharpness, True),
                                            ("nose_offset", cfg.max_pose_asymmetry, False))):
        for kind in ("original", "blur", "tiny", "turned"):
            v = [r["measures"][key] for r in rows if r["kind"] == kind and key in r["measures"]]
            if v:
                bins = np.geomspace(1, 3000, 50) if log else np.linspace(0, 1.5, 50)
                ax.hist(v, bins=bins, alpha=0.5, label=f"{kind} ({len(v)})")
        ax.axvline(limit, color="k", ls="--", lw=1, label="limit")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.legend(fontsize=7)
    fig.suptitle("ORL + celeba-loose: quality measures of originals and degraded copies", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
