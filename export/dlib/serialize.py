"""dlib's serialization primitives, read in pure Python/numpy (no dlib at run time).

The formats, from dlib's ``dlib/serialize.h``, ``dlib/float_details.h`` and ``dlib/cuda/tensor.h``:

- **integer** (every C++ integral type except the char types): one control byte, then the magnitude in
  little-endian bytes. The control byte's low 4 bits are the number of magnitude bytes (1..8; 0 is invalid, so
  zero is ``01 00``); bit 0x80 marks a negative number. An unsigned integer with bit 0x80 set is invalid.
- **std::string**: its length as an unsigned integer, then the raw bytes.
- **bool**: the ASCII character ``'1'`` or ``'0'``.
- **float / double scalar**: not IEEE bytes but ``float_details``: the mantissa (int64) then the exponent (int16),
  both as integers (dlib's comment says exponent first; the code writes the mantissa first). The value is
  ``ldexp((T) mantissa, exponent)`` with ``T`` the C++ type read into, except for the exponents 32000 (+inf),
  32001 (-inf) and 32002 (nan). dlib's older ASCII float format (first byte with a bit of 0x70 set) is refused.
- **resizable_tensor**: version 2 (an int), then n, k, nr, nc (long long), then n*k*nr*nc little-endian IEEE
  float32 values.
- **alias_tensor**: version 1, then n, k, nr, nc; no data.

:class:`DlibReader` walks a byte string with a position ``pos``; every read checks what it reads and raises
:class:`edgeface.errors.DlibFormatError` naming the file and the byte offset on truncation or bad data. It is the
one reader of dlib files in edgeface (the face-recognition ResNet and the shape predictor both use it).
"""

from __future__ import annotations

import numpy as np

from edgeface.errors import DlibFormatError

#: float_details' special exponents
EXP_INF, EXP_NINF, EXP_NAN = 32000, 32001, 32002


class DlibReader:
    """Sequential reader of dlib-serialized data.

    ``DlibReader(data, name)``: ``name`` (usually the file's path) starts every error message. Methods read one
    item each and advance ``pos``: :meth:`int`, :meth:`uint`, :meth:`string`, :meth:`expect_string`, :meth:`bool`,
    :meth:`float_scalar`, :meth:`tensor`, :meth:`alias_tensor`; :meth:`expect_end` checks that nothing is left.
    The ``what`` argument of each names the item in error messages.
    """

    def __init__(self, data: bytes, name: str = "<bytes>"):
        self.data = memoryview(data).cast("B")
        self.name = str(name)
        self.pos = 0

    # -- errors and raw bytes ------------------------------------------------------------------------------

    def fail(self, message: str, at: int | None = None):
        """Raise :class:`DlibFormatError` for ``message`` at byte offset ``at`` (default: the current position)."""
        raise DlibFormatError(f"{self.name}: {message} at byte offset {self.pos if at is None else at}")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, n: int, what: str, start: int | None = None) -> memoryview:
        """``n`` raw bytes; on truncation the error names ``start`` (the item's first byte; default: here)."""
        if n > self.remaining:
            self.fail(f"truncated: {what} needs {n} bytes, {self.remaining} left", start)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    # -- integers ------------------------------------------------------------------------------------------

    def _integer(self, what: str, signed: bool, max_bytes: int) -> int:
        start = self.pos
        control = self._take(1, what)[0]
        negative = bool(control & 0x80)
        size = control & 0x0F
        if control & 0x70:
            self.fail(f"bad {what}: control byte 0x{control:02x} has reserved bits set", start)
        if size == 0 or size > max_bytes:
            self.fail(f"bad {what}: control byte 0x{control:02x} says {size} bytes (1..{max_bytes} allowed)", start)
        if negative and not signed:
            self.fail(f"bad {what}: negative sign on an unsigned integer", start)
        value = int.from_bytes(self._take(size, what, start), "little")
        return -value if negative else value

    def int(self, what: str = "integer", max_bytes: int = 8) -> int:
        """A signed integer (``max_bytes``: the C++ type's size, 8 for long long / int64)."""
        return self._integer(what, True, max_bytes)

    def uint(self, what: str = "unsigned integer", max_bytes: int = 8) -> int:
        """An unsigned integer (unsigned long / uint64 by default)."""
        return self._integer(what, False, max_bytes)

    def ints(self, count: int, what: str = "run of integers") -> np.ndarray:
        """``count`` consecutive signed integers as an int64 array: the bulk path for long runs of sizes, indices
        and float mantissa/exponent pairs (a tree forest of the shape predictor is nothing else)."""
        data, pos, end = self.data, self.pos, len(self.data)
        out = [0] * count
        for i in range(count):
            if pos >= end:
                self.fail(f"truncated: {what} ends after {i} of {count} integers", pos)
            ctrl = data[pos]
            n = ctrl & 0x0F
            if n == 0 or n > 8 or ctrl & 0x70:
                self.fail(f"bad {what}: control byte 0x{ctrl:02x}", pos)
            if pos + 1 + n > end:
                self.fail(f"truncated: {what} ends inside an integer", pos)
            v = data[pos + 1] if n == 1 else int.from_bytes(data[pos + 1:pos + 1 + n], "little")
            out[i] = -v if ctrl & 0x80 else v
            pos += 1 + n
        self.pos = pos
        return np.array(out, dtype=np.int64)

    # -- strings, bools ------------------------------------------------------------------------------------

    def string(self, what: str = "string", max_len: int = 1 << 20) -> str:
        """A std::string, decoded as Latin-1 (dlib's layer tags are ASCII; Latin-1 never fails to decode)."""
        start = self.pos
        size = self.uint(f"length of {what}")
        if size > max_len:
            self.fail(f"bad {what}: length {size} > {max_len}", start)
        return bytes(self._take(size, what, start)).decode("latin-1")

    def expect_string(self, expected: str, what: str = "version tag") -> str:
        """A std::string that must equal ``expected`` (dlib's ``check_serialized_version``)."""
        start = self.pos
        got = self.string(what, max_len=max(256, len(expected)))
        if got != expected:
            self.fail(f"expected {what} {expected!r}, found {got!r}", start)
        return got

    def bool(self, what: str = "bool") -> bool:
        start = self.pos
        ch = self._take(1, what)[0]
        if ch not in (0x30, 0x31):
            self.fail(f"bad {what}: byte 0x{ch:02x} is neither '0' nor '1'", start)
        return ch == 0x31

    # -- floats --------------------------------------------------------------------------------------------

    def float_scalar(self, what: str = "float", float32: bool = False) -> float:
        """A float/double scalar (float_details: mantissa, exponent). ``float32=True`` rounds as dlib does when it
        reads into a C++ ``float`` (the mantissa is cast to float, then ``ldexp`` in float)."""
        start = self.pos
        if self.remaining and self.data[self.pos] & 0x70:
            self.fail(f"bad {what}: dlib's old ASCII float format is not supported", start)
        mantissa = self.int(f"mantissa of {what}", max_bytes=8)
        exponent = self.int(f"exponent of {what}", max_bytes=2)
        if exponent == EXP_INF:
            return float("inf")
        if exponent == EXP_NINF:
            return float("-inf")
        if exponent >= EXP_NAN:
            return float("nan")
        if not -(1 << 63) <= mantissa < (1 << 63):
            self.fail(f"bad {what}: mantissa {mantissa} does not fit in int64", start)
        dtype = np.float32 if float32 else np.float64
        with np.errstate(over="ignore", under="ignore"):
            value = np.ldexp(np.array(mantissa, np.int64).astype(dtype), exponent)
        return float(value)

    # -- tensors -------------------------------------------------------------------------------------------

    def _shape(self, what: str) -> tuple[int, int, int, int]:
        start = self.pos
        shape = tuple(self.int(f"{axis} of {what}") for axis in ("num_samples", "k", "nr", "nc"))
        if any(d < 0 for d in shape):
            self.fail(f"bad {what}: negative shape {shape}", start)
        return shape  # type: ignore[return-value]

    def _version(self, expected: int, what: str) -> None:
        start = self.pos
        version = self.int(f"version of {what}", max_bytes=4)
        if version != expected:
            self.fail(f"bad {what}: version {version}, expected {expected}", start)

    def tensor(self, what: str = "tensor") -> np.ndarray:
        """A resizable_tensor: float32 array of shape (n, k, nr, nc)."""
        self._version(2, what)
        shape = self._shape(what)
        count = shape[0] * shape[1] * shape[2] * shape[3]
        raw = self._take(4 * count, f"data of {what} {shape}")
        return np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32).reshape(shape)

    def alias_tensor(self, what: str = "alias_tensor") -> tuple[int, int, int, int]:
        """An alias_tensor: its shape (n, k, nr, nc); it holds no data."""
        self._version(1, what)
        return self._shape(what)

    def expect_end(self) -> None:
        """Raise unless every byte has been read."""
        if self.remaining:
            self.fail(f"{self.remaining} unexpected bytes after the end of the data")
