"""``edgeface enroll --bundle BUNDLE --photos DIR --gallery GALLERY``: one-shot enrollment into the gallery file.

DIR holds ``Name.jpg`` (one photo) or ``Name/*.jpg`` (several; every embedding is kept and matching uses the
best). Each photo goes through the model object (:class:`edgeface.recognizer.Recognizer`: the strict photo
reader, detector, largest face, the bundle's alignment, quality gates, the embedder with the mirror image), as
the admin page's photos do. The bundle must be calibrated: the identity checks are false-accept rates. A rejected photo is named with its reasons and the others still enroll; the exit status
is 1 when any photo was rejected, unless ``--skip-rejected``. A name whose photos show several people, or a
face that matches another enrolled person, is refused (exit 1; ``--allow-similar`` overrides,
:mod:`edgeface.enroll_checks`); photos already enrolled are reported as such. Photos are embedded before
the gallery's lock is taken; the merge then runs on the current file (:mod:`edgeface.gallery_writer`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._common import add_detector_arguments

NAME = "enroll"
HELP = "enroll people from photos into a gallery file (embeddings only)"


def add_arguments(p) -> None:
    p.add_argument("--bundle", type=Path, required=True, help="model bundle directory or a bare .onnx/.tflite file")
    p.add_argument("--photos", type=Path, required=True, help="folder of Name.jpg or Name/*.jpg photos")
    p.add_argument("--gallery", type=Path, required=True, help="gallery file to create or extend (mode 0600; 0660 with the folder's group in a "
                                                          "shared folder, docs/deployment.md 3a)")
    p.add_argument("--model", default=None, help="bundle model key (onnx_int8, tflite_int8, ...); default: the bundle's preferred")
    p.add_argument("--config", type=Path, default=None, help="the door's gate config: its [detector], [quality] and [policy] (the door's FAR) apply (default: built-in defaults)")
    p.add_argument("--skip-rejected", action="store_true", help="exit 0 even when some photos were rejected")
    p.add_argument("--allow-similar", action="store_true",
                   help="enroll even a face that matches another enrolled person, or a name whose photos do not "
                        "match each other (warned, not refused)")
    p.add_argument("--threads", type=int, default=1, help="inference threads")
    add_detector_arguments(p)


def run(args) -> int:
    from ..config import load_config
    from ..enroll_checks import check_person
    from ..enroll_photos import scan_enroll_folder
    from ..errors import EdgefaceError
    from ..gallery import Gallery
    from ..gallery_writer import GalleryWriter, check_writable
    from ..names import printable
    from ..recognizer import Recognizer
    from ._common import detector_config

    folder = scan_enroll_folder(args.photos)
    for path, why in folder.skipped:
        print(f"SKIPPED {printable(str(path))}: {why}")
    photos = folder.photos
    if not photos:
        raise EdgefaceError(f"{args.photos}: no photos (expected Name.jpg or Name/*.jpg)")
    gate_cfg = load_config(args.config) if args.config else None
    check_writable(args.gallery)  # before any slow work
    recognizer = Recognizer.from_bundle(args.bundle, args.model, detector=detector_config(args, gate_cfg),
                                        quality=gate_cfg.quality if gate_cfg else None, threads=args.threads,
                                        policy=gate_cfg.policy if gate_cfg else None,
                                        access=gate_cfg.access if gate_cfg else None)
    th = recognizer.thresholds()  # before any slow work: an uncalibrated bundle says what to run
    print(f"identity checks: the same face under two names at >= {th.duplicate.value:.4f} ({th.duplicate.source}); "
          f"one person's photos link at >= {th.same_face:.4f} (FAR 1e-2)")
    if args.gallery.exists():  # fail early on a gallery of another model; the merge re-reads it under the lock
        _check_size(Gallery.load(args.gallery, expected_fingerprint=recognizer.fingerprint), args.gallery,
                    recognizer.embedding_size)

    rejected: list = []

    def reject(photo, report) -> None:
        rejected.append(photo)
        print(f"REJECTED {photo.path} ({photo.identity}): {'; '.join(report.reasons)}", flush=True)

    saved = False
    try:
        result = recognizer.embed_photos(photos, desc="enroll", on_reject=reject)
        people: dict[str, list[int]] = {}
        for i, photo in enumerate(result.accepted):
            people.setdefault(photo.identity, []).append(i)
        # the slow part is done: lock, re-read the current gallery, check, merge, write (a removal made
        # meanwhile stays removed)
        writer = GalleryWriter.open(args.gallery, expected_fingerprint=recognizer.fingerprint,
                                    create=(recognizer.fingerprint, recognizer.embedding_size))
        refused, enrolled, added = [], [], 0
        with writer as gallery:
            _check_size(gallery, args.gallery, recognizer.embedding_size)
            for name, rows in people.items():
                labels = [str(result.accepted[r].path) for r in rows]
                verdict = check_person(gallery, name, result.embeddings[rows], labels, recognizer,
                                       allow_similar=args.allow_similar)
                for w in verdict.warnings:
                    print(f"WARNING (--allow-similar) {name}: {w}")
                if verdict.duplicates:
                    print(f"already enrolled: {name}: " + ", ".join(labels[i] for i in verdict.duplicates))
                if verdict.refusal:
                    print(f"REFUSED {name}: {verdict.refusal} (not enrolled; --allow-similar overrides)")
                    refused.append(name)
                    continue
                if verdict.rows:
                    gallery.add(name, result.embeddings[[rows[i] for i in verdict.rows]])
                    enrolled.append(name)
                    added += len(verdict.rows)
            if not enrolled:
                writer.discard()
        saved = bool(enrolled)
    except KeyboardInterrupt:
        print(f"interrupted; {'the gallery was written' if saved else 'gallery unchanged'} "
              f"({len(rejected)} photo(s) rejected so far)", file=sys.stderr)
        return 130
    missing = sorted({p.identity for p in rejected} - set(people))
    print(f"enrolled {added} photo(s) of {len(enrolled)} person(s) into {args.gallery} "
          f"({len(gallery)} enrolled, model {recognizer.key} {recognizer.fingerprint[:12]}); "
          f"{len(rejected)} rejected" + (f", {len(refused)} person(s) refused" if refused else ""))
    if missing:
        print(f"NOT ENROLLED (every photo rejected): {', '.join(missing)}")
    if refused:
        return 1
    return 0 if args.skip_rejected or not rejected else 1


def _check_size(gallery, path, size: int) -> None:
    from ..gallery import GalleryEmbeddingSizeError

    if gallery.embedding_size != size:
        raise GalleryEmbeddingSizeError(f"{path}: holds {gallery.embedding_size}-d embeddings, "
                                        f"the model makes {size}-d ones")
