"""``edgeface calibrate --bundle BUNDLE --data DIR --far 1e-3``: store the threshold for a target FAR.

DIR (``<identity>/*.jpg``) must hold people who are neither enrolled nor in the embedder's training set. The
photos go through the door's own steps (detector, alignment, quality gates, the bundle's embedder); the
threshold, expected TAR and one-shot FNIR go into ``edgeface.json`` ``thresholds[model key]``, where the gate
reads it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from ._common import add_detector_arguments, detector_from_args

NAME = "calibrate"
#: an expected TAR below this at the chosen FAR is warned as useless
USELESS_TAR = 0.5
HELP = "calibrate the match threshold of a bundle for a target false-accept rate"


def add_arguments(p) -> None:
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory (its edgeface.json is updated)")
    p.add_argument("--data", type=Path, required=True, help="folder <identity>/*.jpg of people disjoint from the enrolled ones")
    p.add_argument("--far", type=float, default=1e-3, help="target false-accept rate (default 1e-3)")
    p.add_argument("--model", default=None, help="bundle model key; default: the bundle's preferred")
    p.add_argument("--config", type=Path, default=None, help="gate config whose [quality] gates to apply")
    p.add_argument("--max-identities", type=int, default=None, help="use at most this many identities (sorted)")
    p.add_argument("--per-identity", type=int, default=None, help="use at most this many photos per identity")
    p.add_argument("--seed", type=int, default=0, help="seed of the impostor sample and the one-shot split")
    p.add_argument("--json", type=Path, default=None, help="also write the full report here")
    p.add_argument("--dry-run", action="store_true", help="report, but do not write edgeface.json")
    p.add_argument("--threads", type=int, default=1, help="inference threads")
    add_detector_arguments(p)


def run(args) -> int:
    from ..bundle import Bundle, Threshold
    from ..calibrate import calibrate
    from ..config import QualityConfig, load_config
    from ..enroll import embed_photos
    from ..errors import EdgefaceError, ModelError
    from ..faceset import scan_identities
    from ..metrics import far_key
    from ..runtime import open_embedder

    bundle = Bundle.load(args.bundle)
    if bundle.bare and not args.dry_run:
        raise ModelError(f"{args.bundle} is a bare model file: calibrate needs a bundle directory with "
                         "edgeface.json to store the threshold in (or use --dry-run)")
    key = args.model or bundle.default_key()
    embedder = open_embedder(bundle, model=key, threads=args.threads)
    try:
        photos = scan_identities(args.data)
    except FileNotFoundError as exc:
        raise EdgefaceError(str(exc)) from None
    photos = select(photos, args.max_identities, args.per_identity)
    if not photos:
        raise EdgefaceError(f"{args.data}: no photos")
    cfg = load_config(args.config).quality if args.config else QualityConfig()
    result = embed_photos(photos, detector_from_args(args), embedder, cfg, desc="calibrate")
    cal = calibrate(result.embeddings, result.labels, args.far, seed=args.seed)
    data = f"{args.data} ({cal.identities} identities, {cal.images} photos, {len(result.rejected)} rejected by quality)"
    report = {"bundle": str(args.bundle), "model": key, "fingerprint": embedder.fingerprint, "data": data,
              "rejected": len(result.rejected), **cal.to_json()}
    print(f"model {key}: threshold {cal.threshold:.4f} for FAR {far_key(args.far)} "
          f"(measured {cal.achieved_far:.2e} on {cal.impostor_pairs} impostor pairs)")
    print(f"  expected TAR {cal.tar:.4f} on {cal.genuine_pairs} genuine pairs; one-shot FNIR {cal.fnir:.4f}, "
          f"FPIR {cal.fpir:.4f}, rank-1 {cal.rank1:.4f}")
    print(f"  on {data}")
    if not cal.tar >= USELESS_TAR:
        print(f"WARNING: expected TAR {cal.tar:.3f} at FAR {far_key(args.far)} is below {USELESS_TAR}: most "
              "attempts of enrolled people would be refused; this model (or data) is not fit for this FAR",
              file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.dry_run:
        return 0
    bundle.meta.thresholds[key] = Threshold(
        value=cal.threshold, far=args.far, tar=cal.tar, fnir=cal.fnir, data=data, points=cal.points,
        calibrated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    out = bundle.save()
    print(f"stored thresholds[{key}] in {out}")
    return 0


def select(photos, max_identities: int | None, per_identity: int | None):
    """The first ``max_identities`` identities (sorted) and the first ``per_identity`` photos of each."""
    by_id: dict[str, list] = {}
    for p in photos:
        by_id.setdefault(p.identity, []).append(p)
    ids = sorted(by_id)[:max_identities] if max_identities else sorted(by_id)
    return [p for i in ids for p in (by_id[i][:per_identity] if per_identity else by_id[i])]
