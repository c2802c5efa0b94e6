"""``edgeface keys generate --out DIR`` (the Ed25519 key pair that signs galleries) and ``edgeface keys pin-secret
--out FILE`` (the site's PIN secret)."""

from __future__ import annotations

NAME = "keys"
HELP = "generate the Ed25519 key pair that signs galleries, or the site's PIN secret (mode 0600)"
DESCRIPTION = """Generate an Ed25519 key pair for signing galleries, or a site's PIN secret.

  edgeface keys generate --out DIR [--name gallery_signing]
  edgeface keys pin-secret --out FILE

generate writes DIR/NAME.key (private, mode 0600: keep it on the enrolment desk) and DIR/NAME.pub (copy it to
every door: [model] gallery_public_key). pin-secret writes 32 random bytes as hex (mode 0600): every stored PIN
hash is keyed with it, so the gallery alone never reveals a PIN. Keep it on the desk (people set --pin-secret)
and on each door ([access] pin_secret_file, or as the systemd credential pin-secret, e.g. with
systemd-creds encrypt and LoadCredentialEncrypted=), never in the gallery. Neither overwrites an existing file."""


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write NAME.key and NAME.pub into DIR")
    gen.add_argument("--out", required=True, metavar="DIR", help="directory for the key files")
    gen.add_argument("--name", default="gallery_signing", help="file name stem (default: gallery_signing)")
    pin = sub.add_parser("pin-secret", help="write a new site PIN secret to FILE (mode 0600)")
    pin.add_argument("--out", required=True, metavar="FILE", help="the secret's file")


def run(args) -> int:
    if args.action == "pin-secret":
        import os
        from pathlib import Path

        from edgeface.access.credentials import load_pin_secret, new_pin_secret, secret_id
        from edgeface.errors import EdgefaceError

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise EdgefaceError(f"{out} exists; refusing to overwrite a PIN secret (every PIN keyed with it "
                                "would stop working)") from None
        with os.fdopen(fd, "w") as f:
            f.write(new_pin_secret())
        print(f"PIN secret {out} (mode 0600), id {secret_id(load_pin_secret(out))}")
        return 0
    from edgeface.device.fleet.keys import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out, args.name)
    print(f"private key {private_path} (mode 0600)\npublic key  {public_path}\n"
          f"key id      {key_id(load_public_key(public_path))}")
    return 0
