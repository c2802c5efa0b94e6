"""``edgeface calibrate --bundle BUNDLE --data DIR --far 1e-3``: store the threshold for a target FAR.

DIR (``<identity>/*.jpg``) must hold people who are neither enrolled nor in the embedder's training set. The
photos go through the model object exactly as enrollment's do (:meth:`edgeface.recognizer.Recognizer.embed_photos`:
detector, alignment, quality gates, the embedder with the mirror image); the threshold, expected TAR, one-shot
FNIR and the impostor tail (score, FAR points, the pair count and the highest impostor score, from which
:mod:`edgeface.thresholds` sets every other threshold as a FAR) go into ``edgeface.json`` ``thresholds[model
key]``, where the gate reads them. ``--mode verify`` calibrates the 1:1 threshold of ``[access] mode = face_and_badge / face_and_pin``
(one comparison per attempt) and stores it as ``thresholds["<key>:verify"]``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from ._common import add_detector_arguments

NAME = "calibrate"
#: an expected TAR below this at the chosen FAR is warned as useless
USELESS_TAR = 0.5
HELP = "calibrate the match threshold of a bundle for a target false-accept rate"


def add_arguments(p) -> None:
    p.add_argument("--bundle", type=Path, required=True, help="bundle directory (its edgeface.json is updated)")
    p.add_argument("--data", type=Path, required=True, help="folder <identity>/*.jpg of people disjoint from the enrolled ones")
    p.add_argument("--mode", choices=("identify", "verify"), default="identify",
                   help="identify: the 1:N threshold (default); verify: the 1:1 threshold, stored as '<key>:verify'")
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
    from ..config import load_config
    from ..errors import EdgefaceError, ModelError
    from ..faceset import scan_identities
    from ..metrics import far_key
    from ..recognizer import Recognizer
    from ._common import detector_config

    bundle = Bundle.load(args.bundle)
    if bundle.bare and not args.dry_run:
        raise ModelError(f"{args.bundle} is a bare model file: calibrate needs a bundle directory with "
                         "edgeface.json to store the threshold in (or use --dry-run)")
    if not 0 < args.far < 1:
        raise EdgefaceError(f"--far must be between 0 and 1, got {args.far}")
    gate_cfg = load_config(args.config) if args.config else None
    recognizer = Recognizer.from_bundle(bundle, args.model, detector=detector_config(args, gate_cfg),
                                        quality=gate_cfg.quality if gate_cfg else None, threads=args.threads)
    key = recognizer.key
    try:
        photos = scan_identities(args.data)
    except FileNotFoundError as exc:
        raise EdgefaceError(str(exc)) from None
    photos = select(photos, args.max_identities, args.per_identity)
    if not photos:
        raise EdgefaceError(f"{args.data}: no photos")
    result = recognizer.embed_photos(photos, desc="calibrate")  # as enrollment embeds them (mirror image included)
    verify = args.mode == "verify"
    cal = calibrate(result.embeddings, result.labels, args.far, seed=args.seed, verify=verify,
                    scorer=recognizer.scorer)
    stored = f"{key}:verify" if verify else key
    data = f"{args.data} ({cal.identities} identities, {cal.images} photos, {len(result.rejected)} rejected by quality)"
    report = {"bundle": str(args.bundle), "model": key, "fingerprint": recognizer.fingerprint, "data": data,
              "rejected": len(result.rejected), "mode": args.mode,
              **{k: None if isinstance(v, float) and v != v else v for k, v in cal.to_json().items()}}
    print(f"model {key} ({'1:1 verification' if verify else '1:N identification'}): threshold {cal.threshold:.4f} for FAR {far_key(args.far)} "
          f"(measured {cal.achieved_far:.2e} on {cal.impostor_pairs} impostor pairs; the strictest FAR it can "
          f"resolve is {1 / cal.impostor_pairs:.1e})")
    print(f"  expected TAR {cal.tar:.4f} on {cal.genuine_pairs} genuine pairs"
          + ("" if verify else f"; one-shot FNIR {cal.fnir:.4f}, FPIR {cal.fpir:.4f}, rank-1 {cal.rank1:.4f}"))
    print(f"  on {data}")
    from ..calibrate import TOP_IMPOSTORS

    if cal.impostor_pairs * args.far < TOP_IMPOSTORS:
        print(f"WARNING: only {cal.impostor_pairs * args.far:.0f} impostor pair(s) lie above the threshold for FAR "
              f"{far_key(args.far)}: it is noisy, and the stricter thresholds edgeface derives from it (enrollment's "
              f"duplicate check, the lockout's) fall back to the door's; calibrate on more people (at least "
              f"{TOP_IMPOSTORS / args.far:.0f} impostor pairs)", file=sys.stderr)
    if not cal.tar >= USELESS_TAR:
        print(f"WARNING: expected TAR {cal.tar:.3f} at FAR {far_key(args.far)} is below {USELESS_TAR}: most "
              "attempts of enrolled people would be refused; this model (or data) is not fit for this FAR",
              file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.dry_run:
        return 0
    bundle.meta.thresholds[stored] = Threshold(
        value=cal.threshold, far=args.far, tar=cal.tar, fnir=None if verify else cal.fnir, data=data, points=cal.points,
        impostor_pairs=cal.impostor_pairs, top_impostor=cal.top_impostor, tail=cal.tail, mirror=True,
        calibrated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    out = bundle.save()
    print(f"stored thresholds[{stored}] in {out}")
    return 0


def select(photos, max_identities: int | None, per_identity: int | None):
    """The first ``max_identities`` identities (sorted) and the first ``per_identity`` photos of each."""
    by_id: dict[str, list] = {}
    for p in photos:
        by_id.setdefault(p.identity, []).append(p)
    ids = sorted(by_id)[:max_identities] if max_identities else sorted(by_id)
    return [p for i in ids for p in (by_id[i][:per_identity] if per_identity else by_id[i])]
