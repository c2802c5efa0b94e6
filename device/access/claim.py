"""A credential presented at the door: a badge number or a PIN, from one reader, at a time on the gate's clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Claim:
    """``kind`` is "badge" (``value`` the canonical badge number) or "pin" (``value`` the digits, kept in memory
    only until the claim is decided, never logged). ``t`` is on the gate's clock (monotonic, or video time)."""

    kind: str
    value: str
    t: float
    source: str = "reader"

    def describe(self) -> str:
        """What may be logged: the badge number, never a PIN."""
        return f"badge {self.value}" if self.kind == "badge" else "PIN"


@dataclass(frozen=True)
class ReaderFault:
    """A frame or entry a reader could not use (bad parity, wrong length, noise); audited as ``bad_frame``."""

    t: float
    detail: str
