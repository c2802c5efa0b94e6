"""``edgeface gallery sign|verify``: detached Ed25519 signatures of gallery files (GALLERY.sig)."""

from __future__ import annotations

NAME = "gallery"
HELP = "sign a gallery file, or verify its signature"
DESCRIPTION = """Sign a gallery file with the private key, or verify it with the public key.

  edgeface gallery sign --key gallery_signing.key --gallery people.gallery     # writes people.gallery.sig
  edgeface gallery verify --key gallery_signing.pub --gallery people.gallery   # exit 0, or 1 with the reason

The signature covers the whole file, its version counter included; sign again after every change."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, what in (("sign", "private"), ("verify", "public")):
        p = sub.add_parser(action, help=f"{action} G (signature in G.sig) with the {what} key")
        p.add_argument("--key", required=True, metavar=what.upper(), help=f"{what} key file (PEM)")
        p.add_argument("--gallery", required=True, metavar="G", help="gallery file")


def run(args) -> int:
    from edgeface.device.fleet import keys, signing

    if args.action == "sign":
        path, doc = signing.sign_file(args.gallery, keys.load_private_key(args.key))
        print(f"signed {args.gallery} (version {doc.gallery_version}, {doc.size} bytes) with key {doc.key_id}: {path}")
        return 0
    public_key = keys.load_public_key(args.key)
    data, doc = signing.read_signed(args.gallery)
    g = signing.verified_gallery(data, doc, public_key, str(args.gallery))
    print(f"ok: {args.gallery} version {g.version}, {len(g)} enrolled, signed by key {doc.key_id}")
    return 0
