"""``edgeface enroll --bundle BUNDLE --photos DIR --gallery GALLERY``: one-shot enrollment into the gallery file.

DIR holds ``Name.jpg`` (one photo) or ``Name/*.jpg`` (several; every embedding is kept and matching uses the
best). Each photo goes through the door's own steps (detector, largest face, alignment, quality gates, the
bundle's embedder). A rejected photo is named with its reasons and the others still enroll; the exit status
is 1 when any photo was rejected, unless ``--skip-rejected``.
"""

from __future__ import annotations

from pathlib import Path

from ._common import add_detector_arguments, detector_from_args

NAME = "enroll"
HELP = "enroll people from photos into a gallery file (embeddings only)"


def add_arguments(p) -> None:
    p.add_argument("--bundle", type=Path, required=True, help="model bundle directory or a bare .onnx/.tflite file")
    p.add_argument("--photos", type=Path, required=True, help="folder of Name.jpg or Name/*.jpg photos")
    p.add_argument("--gallery", type=Path, required=True, help="gallery file to create or extend (mode 0600)")
    p.add_argument("--model", default=None, help="bundle model key (onnx_int8, tflite_int8, ...); default: the bundle's preferred")
    p.add_argument("--config", type=Path, default=None, help="gate config whose [quality] gates to apply (default: built-in defaults)")
    p.add_argument("--skip-rejected", action="store_true", help="exit 0 even when some photos were rejected")
    p.add_argument("--threads", type=int, default=1, help="inference threads")
    add_detector_arguments(p)


def run(args) -> int:
    from ..bundle import Bundle
    from ..config import QualityConfig, load_config
    from ..enroll import embed_photos
    from ..errors import EdgefaceError
    from ..faceset import scan_identities
    from ..gallery import Gallery
    from ..gallery_writer import GalleryWriter, check_writable
    from ..runtime import open_embedder

    try:
        photos = scan_identities(args.photos)
    except FileNotFoundError as exc:
        raise EdgefaceError(str(exc)) from None
    if not photos:
        raise EdgefaceError(f"{args.photos}: no photos (expected Name.jpg or Name/*.jpg)")
    cfg = load_config(args.config).quality if args.config else QualityConfig()
    check_writable(args.gallery)  # before any slow work
    embedder = open_embedder(Bundle.load(args.bundle), model=args.model, threads=args.threads)
    if args.gallery.exists():  # fail early on a gallery of another model; the merge re-reads it under the lock
        _check_size(Gallery.load(args.gallery, expected_fingerprint=embedder.fingerprint), args.gallery,
                    embedder.embedding_size)
    detector = detector_from_args(args)

    result = embed_photos(photos, detector, embedder, cfg, desc="enroll")
    for photo, report in result.rejected:
        print(f"REJECTED {photo.path} ({photo.identity}): {'; '.join(report.reasons)}")
    people: dict[str, list[int]] = {}
    for i, photo in enumerate(result.accepted):
        people.setdefault(photo.identity, []).append(i)
    # the slow part is done: lock, re-read the current gallery, merge, write (a removal made meanwhile stays)
    writer = GalleryWriter.open(args.gallery, expected_fingerprint=embedder.fingerprint,
                                create=(embedder.fingerprint, embedder.embedding_size))
    with writer as gallery:
        _check_size(gallery, args.gallery, embedder.embedding_size)
        for name, rows in people.items():
            gallery.add(name, result.embeddings[rows])
        if not people:
            writer.discard()
    missing = sorted({p.identity for p, _ in result.rejected} - set(people))
    print(f"enrolled {len(result.accepted)} photo(s) of {len(people)} person(s) into {args.gallery} "
          f"({len(gallery)} enrolled, model {embedder.key} {embedder.fingerprint[:12]}); "
          f"{len(result.rejected)} rejected")
    if missing:
        print(f"NOT ENROLLED (every photo rejected): {', '.join(missing)}")
    return 0 if args.skip_rejected or not result.rejected else 1


def _check_size(gallery, path, size: int) -> None:
    from ..gallery import GalleryEmbeddingSizeError

    if gallery.embedding_size != size:
        raise GalleryEmbeddingSizeError(f"{path}: holds {gallery.embedding_size}-d embeddings, "
                                        f"the model makes {size}-d ones")
