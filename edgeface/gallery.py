"""The gallery file: the embeddings of enrolled people that the door compares live faces with.

One binary file, written atomically with mode 0600 (a reader sees the old file or the whole new one), that
holds only embeddings, never images. Layout (all integers little-endian; see docs/gallery.md)::

    MAGIC  b"EFGALLRY"          8 bytes
    format version              uint32
    header length H             uint32
    payload length P            uint64
    header                      H bytes, UTF-8 JSON (fingerprint, embedding size, dtype, people)
    payload                     P bytes, float32 little-endian, every person's embeddings in header order
    sha256                      32 bytes over everything above

Loading checks, in this order: magic, version, length (truncated / trailing bytes), checksum, header, embedding
size and dtype, finite and non-zero vectors, then the fingerprint of the embedder the gallery was made with.
Every failure raises its own :class:`GalleryError` subclass and nothing partial is ever returned, so a corrupt
gallery can never open a door.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import EdgefaceError
from .fileutil import atomic_write_bytes

MAGIC = b"EFGALLRY"
FORMAT_VERSION = 1
DTYPE = "<f4"
_PREFIX = struct.Struct("<8sIIQ")  # magic, version, header length, payload length
_DIGEST = 32
#: a vector whose norm is below this is treated as zero (it has no direction to compare)
MIN_NORM = 1e-6
#: a header larger than this is not a gallery (guards against reading garbage as a length)
MAX_HEADER = 64 << 20


class GalleryError(EdgefaceError):
    """Base class: the gallery file cannot be used. The door must not open on it."""


class GalleryNotFoundError(GalleryError):
    """The gallery file does not exist."""


class GalleryFormatError(GalleryError):
    """Not a gallery file, or its header cannot be parsed."""


class GalleryTruncatedError(GalleryFormatError):
    """The file is shorter than its own header says (an interrupted copy)."""


class GalleryChecksumError(GalleryError):
    """The content does not match its sha256: the file was damaged or edited."""


class GalleryVersionError(GalleryError):
    """The file was written in a format version this edgeface does not read."""


class GalleryEmbeddingSizeError(GalleryError):
    """Embeddings have a different length than the gallery (or the model) uses."""


class GalleryNonFiniteError(GalleryError):
    """An embedding contains NaN or infinity."""


class GalleryZeroVectorError(GalleryError):
    """An embedding is (nearly) the zero vector and has no direction to compare."""


class GalleryFingerprintError(GalleryError):
    """The gallery was made with another embedder model; its embeddings are not comparable."""


class PersonNotFoundError(GalleryError):
    """No enrolled person has that name or id."""


class DuplicatePersonError(GalleryError):
    """Another enrolled person already has that name or id."""


class PersonNameError(GalleryFormatError):
    """A name that is not a name (empty, too long, control or invisible characters: :mod:`edgeface.names`)."""


def check_name(name: str) -> str:
    """``name`` normalised (:func:`edgeface.names.normalise_name`), or :class:`PersonNameError` saying why it is
    not a name."""
    from .names import name_problem, normalise_name, printable

    normal = normalise_name(name)
    problem = name_problem(normal)
    if problem:
        shown = printable(normal if len(normal) <= 80 else normal[:80] + "...")
        raise PersonNameError(f"'{shown}' is not a valid name: {problem}")
    return normal


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Person:
    """One enrolled person: a stable id, a display name and k unit-length embeddings (k, D) float32.

    ``attributes`` holds JSON-serialisable facts about the person that are not embeddings (credentials as salted
    hashes, schedules, validity, groups): each feature owns its own key, and the gallery stores them as given."""

    id: str
    name: str
    created: str
    updated: str
    embeddings: np.ndarray
    attributes: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = {"id": self.id, "name": self.name, "embeddings": int(len(self.embeddings)),
               "created": self.created, "updated": self.updated}
        if self.attributes:
            out["attributes"] = self.attributes
        return out


def check_embeddings(embeddings: np.ndarray, size: int, what: str = "embeddings") -> np.ndarray:
    """(k, D) float32 copy of ``embeddings`` after checking shape, finiteness and non-zero norm."""
    e = np.asarray(embeddings)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or e.shape[0] == 0:
        raise GalleryEmbeddingSizeError(f"{what}: expected a (k, {size}) array with k >= 1, got shape {e.shape}")
    if e.shape[1] != size:
        raise GalleryEmbeddingSizeError(f"{what}: {e.shape[1]}-d embeddings, the gallery holds {size}-d ones")
    e = np.array(e, dtype=np.float32)
    bad = ~np.all(np.isfinite(e), axis=1)
    if bad.any():
        raise GalleryNonFiniteError(f"{what}: embedding {int(np.flatnonzero(bad)[0])} contains NaN or infinity")
    norms = np.linalg.norm(e, axis=1)
    if np.any(norms < MIN_NORM):
        raise GalleryZeroVectorError(f"{what}: embedding {int(np.flatnonzero(norms < MIN_NORM)[0])} is a zero vector")
    return e


@dataclass
class Gallery:
    """Enrolled people and the fingerprint of the embedder their embeddings came from.

    ``version`` counts the writes of this gallery (0 for a file written before the counter existed); every
    write goes up by one, so a replayed older file can be told from the current one."""

    fingerprint: str
    embedding_size: int
    people: list[Person] = field(default_factory=list)
    version: int = 0

    @classmethod
    def new(cls, fingerprint: str, embedding_size: int) -> "Gallery":
        if int(embedding_size) < 1:
            raise GalleryEmbeddingSizeError(f"embedding size must be positive, got {embedding_size}")
        return cls(str(fingerprint), int(embedding_size), [])

    # -- people ------------------------------------------------------------------------------------
    def find(self, name_or_id: str) -> Person | None:
        """The person whose id, else whose display name, equals ``name_or_id``."""
        for p in self.people:
            if p.id == name_or_id:
                return p
        for p in self.people:
            if p.name == name_or_id:
                return p
        return None

    def _get(self, name_or_id: str) -> Person:
        p = self.find(name_or_id)
        if p is None:
            import difflib

            from .names import printable

            asked = str(name_or_id)
            shown = printable(asked if len(asked) <= 80 else asked[:80] + "...")
            close = difflib.get_close_matches(asked[:200], [q.name for q in self.people], n=3)
            hint = "did you mean " + ", ".join("'" + printable(c) + "'" for c in close) + "? " if close else ""
            raise PersonNotFoundError(f"no enrolled person is called '{shown}' ({hint}{len(self.people)} enrolled; "
                                      "'edgeface people list' shows them)")
        return p

    def add(self, name: str, embeddings: np.ndarray, person_id: str | None = None) -> Person:
        """Enroll ``name`` with (k, D) embeddings, stored L2-normalised.

        A person who is already enrolled under that name keeps their id and gains the new embeddings
        (matching uses the best of a person's embeddings). ``name`` must be a name (:func:`check_name`)."""
        name = check_name(name)
        e = check_embeddings(embeddings, self.embedding_size, f"embeddings of {name!r}")
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        existing = next((p for p in self.people if p.name == name), None)
        if person_id is not None:
            owner = next((p for p in self.people if p.id == person_id), None)
            if owner is not None and owner is not existing:
                raise DuplicatePersonError(f"id {person_id!r} already belongs to {owner.name!r}")
            if existing is not None and existing.id != person_id:
                raise DuplicatePersonError(f"{name!r} is already enrolled with id {existing.id!r}, not {person_id!r}")
        now = _now()
        if existing is not None:
            existing.embeddings = np.concatenate([existing.embeddings, e])
            existing.updated = now
            return existing
        person = Person(person_id or uuid.uuid4().hex[:12], name, now, now, e)
        self.people.append(person)
        return person

    def remove(self, name_or_id: str) -> Person:
        """Forget a person. The next :meth:`save` writes a file without any of their embedding bytes."""
        p = self._get(name_or_id)
        self.people = [q for q in self.people if q is not p]
        return p

    def rename(self, old: str, new: str) -> Person:
        new = check_name(new)
        p = self._get(old)
        other = next((q for q in self.people if q.name == new), None)
        if other is not None and other is not p:
            raise DuplicatePersonError(f"{new!r} is already enrolled (id {other.id})")
        p.name = new
        p.updated = _now()
        return p

    @property
    def embedding_count(self) -> int:
        return sum(len(p.embeddings) for p in self.people)

    def __len__(self) -> int:
        return len(self.people)

    # -- encoding ----------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        header = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "embedding_size": self.embedding_size,
            "dtype": DTYPE,
            "version": int(self.version),
            "people": [_entry(p) for p in self.people],
        }
        head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for p in self.people:
            if np.ndim(p.embeddings) != 2 or len(p.embeddings) == 0 or np.shape(p.embeddings)[1] != self.embedding_size:
                check_embeddings(p.embeddings, self.embedding_size, f"embeddings of {p.name!r}")  # raises
        matrix = (np.concatenate([p.embeddings for p in self.people]) if self.people
                  else np.zeros((0, self.embedding_size), np.float32))
        self._check_rows(matrix, "")
        payload = np.ascontiguousarray(matrix, dtype=DTYPE).tobytes()
        body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head), len(payload)) + head + payload
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<gallery>", expected_fingerprint: str | None = None) -> "Gallery":
        if not data:
            raise GalleryTruncatedError(f"{source}: the file is empty (0 bytes): an interrupted copy?")
        if len(data) < _PREFIX.size:
            if not MAGIC.startswith(data[:len(MAGIC)]):
                raise GalleryFormatError(f"{source}: not an edgeface gallery file (bad magic)")
            raise GalleryTruncatedError(f"{source}: truncated: {len(data)} bytes, shorter than the {_PREFIX.size}-byte prefix")
        magic, version, head_len, payload_len = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise GalleryFormatError(f"{source}: not an edgeface gallery file (bad magic {magic!r})")
        if version != FORMAT_VERSION:
            raise GalleryVersionError(f"{source}: gallery format version {version} is not supported "
                                      f"(this edgeface reads version {FORMAT_VERSION}); re-enroll or upgrade edgeface")
        if head_len > MAX_HEADER:
            raise GalleryFormatError(f"{source}: header length {head_len} is implausible: the file is damaged")
        expected = _PREFIX.size + head_len + payload_len + _DIGEST
        if len(data) < expected:
            raise GalleryTruncatedError(f"{source}: truncated: {len(data)} bytes, the header promises {expected}")
        if len(data) > expected:
            raise GalleryFormatError(f"{source}: {len(data) - expected} unexpected bytes after the checksum")
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise GalleryChecksumError(f"{source}: checksum mismatch: the gallery was damaged or edited; "
                                       "restore it from a backup or re-enroll")
        head_end = _PREFIX.size + head_len
        try:
            header = json.loads(body[_PREFIX.size:head_end].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise GalleryFormatError(f"{source}: header is not valid JSON: {exc}") from None
        gallery = cls._from_header(header, body[head_end:], source, version)
        if expected_fingerprint is not None and gallery.fingerprint != expected_fingerprint:
            raise GalleryFingerprintError(
                f"{source}: made with embedder {gallery.fingerprint[:12]}..., but the model in use is "
                f"{expected_fingerprint[:12]}...: embeddings of different models are not comparable; "
                "re-enroll everyone with this model")
        return gallery

    @classmethod
    def _from_header(cls, header, payload: bytes, source: str, version: int) -> "Gallery":
        if not isinstance(header, dict):
            raise GalleryFormatError(f"{source}: header is not a JSON object")
        if header.get("format_version") != version:
            raise GalleryVersionError(f"{source}: header says format version {header.get('format_version')!r}, "
                                      f"the prefix says {version}")
        try:
            fingerprint = header["fingerprint"]
            size = header["embedding_size"]
            dtype = header["dtype"]
            entries = header["people"]
        except KeyError as exc:
            raise GalleryFormatError(f"{source}: header lacks {exc.args[0]!r}") from None
        if dtype != DTYPE:
            raise GalleryFormatError(f"{source}: embeddings are {dtype!r}, only {DTYPE!r} (float32) is supported")
        if not isinstance(fingerprint, str) or not isinstance(entries, list):
            raise GalleryFormatError(f"{source}: fingerprint must be a string and people a list")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise GalleryEmbeddingSizeError(f"{source}: embedding size {size!r} is not a positive integer")
        try:
            counts = [int(e["count"]) for e in entries]
        except (KeyError, TypeError, ValueError):
            raise GalleryFormatError(f"{source}: every person needs an integer 'count'") from None
        if any(c < 1 for c in counts):
            raise GalleryFormatError(f"{source}: a person has no embeddings")
        row_bytes = size * 4
        if len(payload) % row_bytes:
            raise GalleryEmbeddingSizeError(f"{source}: {len(payload)} payload bytes are not whole {size}-d float32 vectors")
        if sum(counts) * row_bytes != len(payload):
            raise GalleryEmbeddingSizeError(
                f"{source}: the header lists {sum(counts)} embeddings of size {size} "
                f"({sum(counts) * row_bytes} bytes), the payload has {len(payload)} bytes")
        matrix = np.frombuffer(payload, dtype=DTYPE).reshape(-1, size).astype(np.float32)
        gallery_version = header.get("version", 0)
        if not isinstance(gallery_version, int) or isinstance(gallery_version, bool) or gallery_version < 0:
            raise GalleryFormatError(f"{source}: version {gallery_version!r} is not a non-negative integer")
        attributes = [e.get("attributes", {}) if isinstance(e, dict) else {} for e in entries]
        if not all(isinstance(a, dict) for a in attributes):
            raise GalleryFormatError(f"{source}: a person's attributes are not a JSON object")
        gallery = cls(fingerprint, size, [], int(gallery_version))
        owners = [str(e.get("name", "?")) if isinstance(e, dict) else "?" for e in entries]
        gallery._check_rows(matrix, f"{source}: ", np.repeat(np.arange(len(counts)), counts), owners)
        try:
            fields = [(str(e["id"]), str(e["name"]), str(e["created"]), str(e["updated"])) for e in entries]
        except KeyError as exc:
            raise GalleryFormatError(f"{source}: a person lacks {exc.args[0]!r}") from None
        for column, what in ((0, "id"), (1, "name")):
            values = [f[column] for f in fields]
            if len(set(values)) != len(values):
                seen: set[str] = set()
                dup = next(v for v in values if v in seen or seen.add(v))
                raise GalleryFormatError(f"{source}: {what} {dup!r} appears twice")
        # one view per person into the matrix (one allocation for the whole gallery)
        ends = np.cumsum(counts).tolist()
        gallery.people = [Person(pid, name, created, updated, matrix[end - count:end], attrs)
                          for (pid, name, created, updated), count, end, attrs in zip(fields, counts, ends, attributes)]
        return gallery

    def _check_rows(self, matrix: np.ndarray, prefix: str, owner: np.ndarray | None = None,
                    names: list[str] | None = None) -> None:
        """Every row finite and non-zero, checked at once; the error names the person the bad row belongs to."""
        if owner is None:
            owner = np.repeat(np.arange(len(self.people)), [len(p.embeddings) for p in self.people])
            names = [p.name for p in self.people]
        finite = np.all(np.isfinite(matrix), axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise GalleryNonFiniteError(f"{prefix}embeddings of {names[owner[row]]!r}: "
                                        f"embedding {row - int(np.searchsorted(owner, owner[row]))} contains NaN or infinity")
        zero = np.linalg.norm(matrix, axis=1) < MIN_NORM
        if zero.any():
            row = int(np.flatnonzero(zero)[0])
            raise GalleryZeroVectorError(f"{prefix}embeddings of {names[owner[row]]!r}: "
                                         f"embedding {row - int(np.searchsorted(owner, owner[row]))} is a zero vector")

    # -- files -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, expected_fingerprint: str | None = None) -> "Gallery":
        """Read and verify a gallery file; with ``expected_fingerprint``, refuse one made by another model."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise GalleryNotFoundError(f"{path}: no gallery file (enroll people first: edgeface enroll)") from None
        except IsADirectoryError:
            raise GalleryFormatError(f"{path}: is a directory, not a gallery file") from None
        except OSError as exc:
            raise GalleryError(f"{path}: cannot read the gallery: {exc}") from None
        return cls.from_bytes(data, str(path), expected_fingerprint)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file in the same directory, fsync, ``os.replace``) with mode 0600, keeping a
        shared gallery's group and group bits (0660 group edgeface stays so; never world bits); the version
        counter goes up by one."""
        path = Path(path)
        self.version += 1
        try:
            atomic_write_bytes(path, self.to_bytes(), mode=0o600, group_bits=0o060)
        except BaseException:
            self.version -= 1
            raise
        return path

    def copy(self) -> "Gallery":
        return Gallery(self.fingerprint, self.embedding_size,
                       [replace(p, embeddings=p.embeddings.copy(), attributes=json.loads(json.dumps(p.attributes)))
                        for p in self.people], self.version)


def _entry(p: Person) -> dict:
    entry = {"id": p.id, "name": p.name, "created": p.created, "updated": p.updated, "count": int(len(p.embeddings))}
    if p.attributes:
        entry["attributes"] = p.attributes
    return entry
