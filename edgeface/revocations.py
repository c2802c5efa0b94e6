"""Local removals on a door that runs the desk's signed gallery: the revocation overlay ``GALLERY.revoked``.

A door with ``[model] gallery_public_key`` runs exactly the list the desk signed; rewriting that file would break
its signature, and the door would refuse it and keep granting the person who was meant to be removed. A removal
must nevertheless always be possible at the door, and it is always safe: it only takes people away. So on a
door's signed copy ``people remove`` and the admin page's Remove write an entry into ``GALLERY.revoked`` (JSON,
atomic, mode 0600 plus the gallery's group bits, under the gallery's one writer lock ``GALLERY.lock``), and the
door subtracts every revoked person from the signed list before it goes live (:func:`apply`: the same list with
fewer people; nothing here can add anyone). An entry stays until a newer signed list no longer holds that person
(:func:`prune`, run by the installer under the same lock): then the desk has caught up.

Adding people, badges or PINs on a signed door needs the desk's signature: every other local writer is refused
there with :class:`SignedGalleryError` (:mod:`edgeface.gallery_writer`), which says so plainly.

A door's signed copy is recognised by ``GALLERY.version``, the record of the highest signed version the door
accepted (written only by the door: :mod:`edgeface.device.fleet.signing`). A damaged overlay is an error
(:class:`RevocationsError`): the door never guesses who was revoked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .fileutil import atomic_write_bytes
from .gallery import Gallery, GalleryError, Person, PersonNotFoundError

FORMAT = "edgeface-revocations/1"
REVOKED_SUFFIX = ".revoked"
#: the door's record of the highest signed version it accepted; its presence marks a door's signed copy
SIGNED_RECORD_SUFFIX = ".version"


class SignedGalleryError(GalleryError):
    """A local change that would add to (or rewrite) a door's signed gallery: it needs the desk's signature."""


class RevocationsError(GalleryError):
    """``GALLERY.revoked`` cannot be read: the door does not guess who was revoked."""


def revoked_path(gallery_path: str | Path) -> Path:
    p = Path(gallery_path)
    return p.with_name(p.name + REVOKED_SUFFIX)


def is_signed_copy(gallery_path: str | Path) -> bool:
    """True for a door's copy of a signed gallery (the door keeps ``GALLERY.version`` beside it)."""
    p = Path(gallery_path)
    return p.with_name(p.name + SIGNED_RECORD_SUFFIX).exists()


def signed_refusal(gallery_path: str | Path) -> SignedGalleryError:
    return SignedGalleryError(
        f"{gallery_path} is this door's copy of the desk's signed gallery: adding or changing people, badges or "
        "PINs here needs the desk's signature. Make the change at the enrolment desk and publish it (edgeface "
        "fleet publish, or gallery sign and copy both files). Removing someone always works here: edgeface people "
        "remove NAME, or Remove on the admin page (a local revocation until the desk's list no longer holds them)")


@dataclass(frozen=True)
class Revocation:
    id: str
    name: str
    at: str  # ISO 8601 UTC
    by: str  # who revoked (the admin page's user, or "cli")
    signed_version: int  # the signed version that held the person when they were revoked


def read_revocations(gallery_path: str | Path) -> list[Revocation]:
    path = revoked_path(gallery_path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RevocationsError(f"{path}: the local revocations cannot be read ({type(exc).__name__}: {exc}); "
                               "the door will not guess who was revoked: restore the file, or remove the people "
                               "again after deleting it") from None
    try:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TypeError(f"not an {FORMAT} document")
        out = []
        for e in doc["revoked"]:
            out.append(Revocation(str(e["id"]), str(e["name"]), str(e["at"]), str(e["by"]), int(e["signed_version"])))
        return out
    except (KeyError, TypeError, ValueError) as exc:
        raise RevocationsError(f"{path}: malformed local revocations ({exc}); the door will not guess who was "
                               "revoked") from None


def write_revocations(gallery_path: str | Path, entries: list[Revocation]) -> None:
    path = revoked_path(gallery_path)
    if not entries:
        path.unlink(missing_ok=True)
        return
    doc = {"format": FORMAT, "revoked": [asdict(e) for e in entries]}
    atomic_write_bytes(path, json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8") + b"\n", mode=0o600,
                       group_bits=0o060)


def apply(gallery: Gallery, entries: list[Revocation]) -> Gallery:
    """``gallery`` without the revoked people (same version: the signed list it comes from). Only subtracts."""
    if not entries:
        return gallery
    gone = {e.id for e in entries}
    out = Gallery(gallery.fingerprint, gallery.embedding_size, [p for p in gallery.people if p.id not in gone],
                  gallery.version)
    return out


def effective(gallery_path: str | Path, gallery: Gallery | None = None) -> Gallery:
    """The list a signed door actually runs: its signed file minus its revocations (unsigned files: as they are)."""
    gallery = Gallery.load(gallery_path) if gallery is None else gallery
    return apply(gallery, read_revocations(gallery_path)) if is_signed_copy(gallery_path) else gallery


def revoke(gallery_path: str | Path, name_or_id: str, by: str = "cli", timeout: float | None = None) -> tuple[Person, Gallery]:
    """Revoke one person on a door's signed copy: under the gallery's lock, the person is looked up in the signed
    list minus what is revoked already, then added to ``GALLERY.revoked``. Returns (the person, the list the door
    will run). The gallery file itself is not touched (its signature stays valid)."""
    from .gallery_writer import GalleryWriter

    writer = GalleryWriter.open(gallery_path, timeout=timeout)
    with writer as signed:
        writer.discard()
        entries = read_revocations(gallery_path)
        current = apply(signed, entries)
        person = current._get(name_or_id)
        entries.append(Revocation(person.id, person.name, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                  by, signed.version))
        write_revocations(gallery_path, entries)
    return person, apply(signed, entries)


def prune(gallery_path: str | Path, signed: Gallery) -> list[Revocation]:
    """After a newer signed list was installed (the caller holds the gallery's lock): drop the entries of people
    that list no longer holds; returns the dropped ones. A damaged overlay is kept as it is (and keeps failing
    loudly) rather than silently emptied."""
    entries = read_revocations(gallery_path)
    held = {p.id for p in signed.people}
    keep = [e for e in entries if e.id in held]
    if len(keep) != len(entries):
        write_revocations(gallery_path, keep)
    return [e for e in entries if e.id not in held]


__all__ = ["FORMAT", "Revocation", "RevocationsError", "SignedGalleryError", "PersonNotFoundError", "apply",
           "effective", "is_signed_copy", "prune", "read_revocations", "revoke", "revoked_path", "signed_refusal",
           "write_revocations"]
