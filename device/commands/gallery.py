"""``edgeface gallery sign|verify``: signed statements about gallery files (GALLERY.sig)."""

from __future__ import annotations

NAME = "gallery"
HELP = "sign a gallery file for a site, or verify its signature"
DESCRIPTION = """Sign a gallery file for a site with the private key, or verify it with the public key.

  edgeface gallery sign --key gallery_signing.key --gallery people.gallery --site hq [--doors a,b] [--valid-for 7d]
  edgeface gallery verify --key gallery_signing.pub --gallery people.gallery --site hq [--door front]

The signature covers a statement naming the site (and doors), the gallery's version, size and sha256, when it was
issued and when it expires; sign again after every change. A door installs only lists signed for its own site."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, what in (("sign", "private"), ("verify", "public")):
        p = sub.add_parser(action, help=f"{action} G (signature in G.sig) with the {what} key")
        p.add_argument("--key", required=True, metavar=what.upper(), help=f"{what} key file (PEM)")
        p.add_argument("--gallery", required=True, metavar="G", help="gallery file")
        p.add_argument("--site", required=True, help="the site the gallery is for")
    sign = sub.choices["sign"]
    sign.add_argument("--doors", metavar="A,B", help="only these doors of the site (default: every door)")
    sign.add_argument("--valid-for", metavar="DURATION", default="7d", help="how long it is valid (default 7d)")
    sub.choices["verify"].add_argument("--door", help="check it is for this door too")


def run(args) -> int:
    import time

    from edgeface.device.fleet import keys, signing

    from .fleet import door_list, duration_option

    if args.action == "sign":
        valid = duration_option(args.valid_for, "--valid-for")
        path, doc = signing.sign_file(args.gallery, keys.load_private_key(args.key), args.site,
                                      doors=door_list(args.doors), valid_for_s=valid)
        print(f"signed {args.gallery} ({doc.statement.describe()}, {doc.size} bytes) with key {doc.key_id}: {path}")
        return 0
    public_key = keys.load_public_key(args.key)
    data, doc = signing.read_signed(args.gallery)
    g = signing.verified_gallery(data, doc, public_key, str(args.gallery), site=args.site, door=args.door,
                                 now=time.time())
    print(f"ok: {args.gallery} version {g.version}, {len(g)} enrolled, signed by key {doc.key_id} "
          f"({doc.statement.describe()})")
    return 0
