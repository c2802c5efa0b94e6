"""``edgeface people list [--json] | remove NAME | rename OLD NEW --gallery GALLERY``.

Edits rewrite the whole gallery atomically (mode 0600), so a removed person's embeddings leave the file.
A person is named by display name or id.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "people"
HELP = "list, remove or rename enrolled people in a gallery file"


def add_arguments(p) -> None:
    p.add_argument("--gallery", type=Path, help="gallery file")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="enrolled people, their ids and embedding counts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    rm = sub.add_parser("remove", help="forget a person (their embeddings leave the file)")
    rm.add_argument("name", help="display name or id")
    mv = sub.add_parser("rename", help="change a person's display name (id and embeddings stay)")
    mv.add_argument("old", help="display name or id")
    mv.add_argument("new", help="new display name")
    for s in (ls, rm, mv):
        s.add_argument("--gallery", type=Path, default=argparse.SUPPRESS, help="gallery file")


def run(args) -> int:
    from ..errors import EdgefaceError
    from ..gallery import Gallery
    from ..gallery_writer import GalleryWriter

    if not args.gallery:
        raise EdgefaceError("people: --gallery GALLERY is required")
    if args.action == "list":
        gallery = Gallery.load(args.gallery)
        rows = [p.summary() for p in gallery.people]
        if args.json:
            print(json.dumps({"gallery": str(args.gallery), "fingerprint": gallery.fingerprint,
                              "embedding_size": gallery.embedding_size, "people": rows}, indent=2, ensure_ascii=False))
            return 0
        print(f"{args.gallery}: {len(rows)} enrolled, {gallery.embedding_size}-d, model {gallery.fingerprint[:12]}")
        width = max([len(r["name"]) for r in rows] + [4])
        for r in rows:
            print(f"  {r['name']:<{width}}  {r['id']}  {r['embeddings']:>3} embedding(s)  updated {r['updated']}")
        return 0
    if args.action == "remove":
        with GalleryWriter.open(args.gallery) as gallery:  # locked; applies to the current content
            person = gallery.remove(args.name)
        print(f"removed {person.name} ({person.id}, {len(person.embeddings)} embedding(s)); {len(gallery)} enrolled")
        return 0
    with GalleryWriter.open(args.gallery) as gallery:
        person = gallery.rename(args.old, args.new)
    print(f"renamed {args.old} -> {person.name} ({person.id})")
    return 0
