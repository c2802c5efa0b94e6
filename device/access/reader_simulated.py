"""Credentials from a file for ``gate --simulate --credentials FILE.jsonl``: one JSON object per line,
``{"t": 3.0, "badge": "0012345"}`` or ``{"t": 3.0, "pin": "4711"}``, ``t`` in seconds of video time. A claim is
presented when the replay reaches its ``t``. Blank lines and lines starting with ``#`` are skipped; anything else
that is not such an object is a :class:`~edgeface.errors.ConfigError` naming the line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgeface.access.credentials import PIN_RE, AccessDataError, badge_number
from edgeface.errors import ConfigError

from .claim import Claim


def read_claims(path: str | Path) -> list[Claim]:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the credentials file: {exc}") from None
    claims = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not a JSON object: {exc}") from None
        if not isinstance(item, dict) or set(item) - {"t", "badge", "pin"} or len(set(item) & {"badge", "pin"}) != 1:
            raise ConfigError(f'{where}: expected {{"t": SECONDS, "badge": "..."}} or {{"t": SECONDS, "pin": "..."}}')
        t = item.get("t")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise ConfigError(f"{where}: t must be a non-negative number of seconds")
        if "badge" in item:
            try:
                claims.append(Claim("badge", badge_number(item["badge"]), float(t), "simulated"))
            except AccessDataError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:
            if not PIN_RE.match(str(item["pin"])):
                raise ConfigError(f"{where}: a PIN is 4 to 12 digits")
            claims.append(Claim("pin", str(item["pin"]), float(t), "simulated"))
    return sorted(claims, key=lambda c: c.t)


class SimulatedReader:
    """Presents the file's claims in time order as the gate's (video) clock passes them."""

    name = "simulated"

    def __init__(self, claims: list[Claim]) -> None:
        self._claims = list(claims)

    @classmethod
    def from_file(cls, path: str | Path) -> "SimulatedReader":
        return cls(read_claims(path))

    def poll(self, now: float | None = None) -> list:
        if now is None:
            return []
        due = [c for c in self._claims if c.t <= now]
        self._claims = self._claims[len(due):]
        return due

    def close(self) -> None:
        self._claims = []
