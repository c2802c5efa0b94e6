"""``edgeface keys generate --out DIR``: an Ed25519 key pair for signing galleries."""

from __future__ import annotations

NAME = "keys"
HELP = "generate the Ed25519 key pair that signs galleries (private key mode 0600)"
DESCRIPTION = """Generate an Ed25519 key pair for signing galleries.

  edgeface keys generate --out DIR [--name gallery_signing]

Writes DIR/NAME.key (private, mode 0600: keep it on the enrolment desk) and DIR/NAME.pub (copy it to every
door: [model] gallery_public_key). Never overwrites an existing key."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write NAME.key and NAME.pub into DIR")
    gen.add_argument("--out", required=True, metavar="DIR", help="directory for the key files")
    gen.add_argument("--name", default="gallery_signing", help="file name stem (default: gallery_signing)")


def run(args) -> int:
    from edgeface.device.fleet.keys import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out, args.name)
    print(f"private key {private_path} (mode 0600)\npublic key  {public_path}\n"
          f"key id      {key_id(load_public_key(public_path))}")
    return 0
