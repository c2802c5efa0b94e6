"""dlib's serialization primitives (``dlib/serialize.h``, ``dlib/float_details.h``), read from bytes.

- An integer is one control byte (low 4 bits: how many magnitude bytes follow, 1 to 8; bit 0x80: negative), then
  the magnitude little-endian. Zero is ``01 00``. An unsigned integer never has the sign bit.
- A float or double is not stored as IEEE bytes: an integer mantissa, then an integer exponent, value
  ``mantissa * 2**exponent``; exponents 32000 / 32001 / 32002 mean +inf / -inf / nan.

Every read checks that the bytes are there; a short or malformed file raises :class:`edgeface.errors.ModelError`
naming the file and the byte offset, never an IndexError.
"""

from __future__ import annotations

import math

import numpy as np

from edgeface.errors import ModelError

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibReader:
    """A cursor over the bytes of one dlib file. ``pos`` is the offset of the next unread byte."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = bytes(data)
        self.name = name
        self.pos = 0

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.name}: {what} at byte {self.pos} of {len(self.data)}")

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends inside {what} (truncated)")

    def int(self) -> int:
        """A signed integer."""
        self._need(1, "an integer")
        ctrl = self.data[self.pos]
        n = ctrl & 0x0F
        if n == 0 or n > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        self._need(1 + n, "an integer")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if ctrl & 0x80 else value

    def uint(self) -> int:
        """An unsigned integer (a size, an index)."""
        self._need(1, "an unsigned integer")
        if self.data[self.pos] & 0x80:
            raise self.fail("negative value where an unsigned integer is expected")
        return self.int()

    def float_scalar(self) -> float:
        """A float or double (mantissa, then exponent), as a Python float (exact for dlib's float32 values)."""
        mantissa = self.int()
        exponent = self.int()
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def ints(self, count: int) -> np.ndarray:
        """``count`` consecutive signed integers as an int64 array: the bulk path for long runs of sizes, indices
        and float mantissa/exponent pairs (a tree forest is nothing else)."""
        data, pos, end = self.data, self.pos, len(self.data)
        out = [0] * count
        for i in range(count):
            if pos >= end:
                self.pos = pos
                raise self.fail("file ends inside a run of integers (truncated)")
            ctrl = data[pos]
            n = ctrl & 0x0F
            if n == 1 and not ctrl & 0x70:
                if pos + 2 > end:
                    self.pos = pos
                    raise self.fail("file ends inside an integer (truncated)")
                v = data[pos + 1]
            else:
                if n == 0 or n > 8 or ctrl & 0x70:
                    self.pos = pos
                    raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
                if pos + 1 + n > end:
                    self.pos = pos
                    raise self.fail("file ends inside an integer (truncated)")
                v = int.from_bytes(data[pos + 1 : pos + 1 + n], "little")
            out[i] = -v if ctrl & 0x80 else v
            pos += 1 + n
        self.pos = pos
        return np.array(out, dtype=np.int64)

    def expect_end(self) -> None:
        """The whole file has been read: trailing bytes mean it is not the file it claims to be."""
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected bytes after the end of the model")
