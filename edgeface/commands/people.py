"""``edgeface people list [--json] | remove NAME | rename OLD NEW | set NAME [access options] --gallery GALLERY``.

Edits rewrite the whole gallery atomically (mode 0600, or shared as it was: docs/deployment.md 3a), so a removed person's embeddings leave the file.
A person is named by display name or id.

On a door's copy of the desk's signed gallery (``GALLERY.version`` beside it) ``remove`` is a local revocation
(``GALLERY.revoked``, :mod:`edgeface.revocations`: the door stops granting the person within about a second, the
signed file stays as signed); ``rename`` and ``set`` are refused there: they need the desk's signature.
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
    st = sub.add_parser("set", help="badges, PIN, schedule and validity of a person (door access control)")
    st.add_argument("name", help="display name or id")
    st.add_argument("--badge", action="append", default=[], metavar="NUMBER", help="add a badge number (repeatable)")
    st.add_argument("--clear-badge", action="store_true", help="remove all badges (before adding --badge ones)")
    st.add_argument("--pin-prompt", action="store_true", help="set the PIN, read twice without echo (stored as a salted scrypt hash keyed with the site's PIN secret)")
    st.add_argument("--pin-secret", type=Path, metavar="FILE", help="the site's PIN secret (edgeface keys pin-secret; default: $CREDENTIALS_DIRECTORY/pin-secret)")
    st.add_argument("--clear-pin", action="store_true", help="remove the PIN")
    st.add_argument("--schedule", metavar="RULES", help='weekly schedule, e.g. "Mon-Fri 07:00-19:00; Sat 09:00-13:00" ("" clears)')
    st.add_argument("--group", action="append", default=None, metavar="GROUP", help="schedule group(s) of [access] schedules (repeatable; \"\" clears)")
    st.add_argument("--valid-from", metavar="DATE", help="first day (YYYY-MM-DD) or moment (YYYY-MM-DDTHH:MM) of access (\"\" clears)")
    st.add_argument("--valid-until", metavar="DATE", help="last day (inclusive) or moment of access (\"\" clears)")
    for s in (ls, rm, mv, st):
        s.add_argument("--gallery", type=Path, default=argparse.SUPPRESS, help="gallery file")


def run(args) -> int:
    from ..errors import EdgefaceError
    from ..gallery import Gallery
    from ..gallery_writer import GalleryWriter

    if not args.gallery:
        raise EdgefaceError("people: --gallery GALLERY is required")
    from ..names import printable

    if args.action == "list":
        gallery = Gallery.load(args.gallery)
        rows = [p.summary() for p in gallery.people]
        rows, revoked = _signed_view(args.gallery, rows)
        if args.json:
            doc = {"gallery": str(args.gallery), "fingerprint": gallery.fingerprint,
                   "embedding_size": gallery.embedding_size, "people": rows}
            if revoked is not None:
                doc["revoked_locally"] = revoked
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return 0
        print(f"{args.gallery}: {len(rows)} enrolled, {gallery.embedding_size}-d, model {gallery.fingerprint[:12]}")
        if revoked:
            print(f"  (signed version {gallery.version}; revoked locally on this door: "
                  f"{', '.join(printable(r['name']) for r in revoked)})")
        names = [printable(r["name"]) for r in rows]  # one line per person, whatever a name holds
        width = max([len(n) for n in names] + [4])
        for name, r in zip(names, rows):
            print(f"  {name:<{width}}  {printable(r['id'])}  {r['embeddings']:>3} embedding(s)  updated "
                  f"{printable(r['updated'])}")
        return 0
    if args.action == "remove":
        from ..revocations import is_signed_copy, revoke

        if is_signed_copy(args.gallery):  # a door's signed copy: a local revocation, never an unsigned rewrite
            person, live = revoke(args.gallery, args.name, by="cli")
            print(f"revoked {printable(person.name)} ({person.id}) on this door: {len(live)} enrolled; the signed gallery "
                  f"stays as signed until the desk's next list, which should no longer hold them")
            return 0
        with GalleryWriter.open(args.gallery) as gallery:  # locked; applies to the current content
            person = gallery.remove(args.name)
        print(f"removed {printable(person.name)} ({person.id}, {len(person.embeddings)} embedding(s)); "
              f"{len(gallery)} enrolled")
        return 0
    if args.action == "set":
        from ..access.people_set import set_access

        person, summary = set_access(args.gallery, args)
        print(f"{printable(person.name)} ({person.id}): {summary}")
        return 0
    with GalleryWriter.open(args.gallery) as gallery:
        person = gallery.rename(args.old, args.new)
    print(f"renamed {printable(args.old)} -> {printable(person.name)} ({person.id})")
    return 0


def _signed_view(path, rows: list[dict]) -> tuple[list[dict], list[dict] | None]:
    """PIN hashes never shown; on a door's signed copy, the people it really runs (local revocations apart)."""
    from dataclasses import asdict

    from ..access.credentials import redacted
    from ..revocations import is_signed_copy, read_revocations

    for r in rows:
        if "attributes" in r:
            r["attributes"] = redacted(r["attributes"])
    if not is_signed_copy(path):
        return rows, None
    revoked = read_revocations(path)
    gone = {e.id for e in revoked}
    return [r for r in rows if r["id"] not in gone], [asdict(e) for e in revoked]
