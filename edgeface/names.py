"""What a person's name may be, and how any text is shown on one line.

A name is what the door, the audit log, ``people list`` and the admin page show for a person, so it must be
one line of visible text that cannot pass for anything else:

* Unicode NFC; runs of spaces (any space separator: U+0020, no-break space, ...; and tabs) become one space,
  and spaces at either end are dropped;
* 1 to :data:`MAX_NAME_CHARS` characters after that;
* no control, format, surrogate, private-use or unassigned character (Unicode categories Cc, Cf, Cs, Co, Cn)
  and no line or paragraph separator (Zl, Zp): so no newline, tab, ESC, NUL, ``\\x0b``, ``\\x0c``, ``\\x85``,
  ``\\u2028``, no bidirectional override and no zero-width joiner. Letters, marks, digits, punctuation,
  symbols and emoji of every script are fine.

:func:`check_name` applies the rule (``edgeface enroll`` file and folder names, ``people rename``, the admin page,
:meth:`edgeface.gallery.Gallery.add` and ``rename``); :func:`printable` escapes what the rule forbids, for names
written before the rule existed and for any other text that goes on one line (log lines, ``people list``).
"""

from __future__ import annotations

import unicodedata

#: the longest name accepted, in characters (after normalising)
MAX_NAME_CHARS = 100
#: Unicode categories a name may not contain: controls, format characters (bidi overrides, zero-width joiners),
#: surrogates, private use, unassigned; line and paragraph separators
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


_KINDS = {"Cc": "a control character", "Cs": "a surrogate", "Co": "a private-use character"}


def _forbidden(c: str) -> bool:
    return unicodedata.category(c) in FORBIDDEN_CATEGORIES


def normalise_name(name: str) -> str:
    """NFC, runs of space separators (and tabs) to one space, stripped (other control characters are left for
    the check to see)."""
    out, space = [], False
    for c in unicodedata.normalize("NFC", str(name)):
        if c == "\t" or unicodedata.category(c) == "Zs":
            space = True
            continue
        if space and out:
            out.append(" ")
        space = False
        out.append(c)
    return "".join(out)


def name_problem(name: str) -> str | None:
    """Why the (normalised) ``name`` is not a name, or None."""
    if not name:
        return "a person needs a non-empty name"
    if len(name) > MAX_NAME_CHARS:
        return f"a name has at most {MAX_NAME_CHARS} characters (this one has {len(name)})"
    bad = next((c for c in name if _forbidden(c)), None)
    if bad is not None:
        what = unicodedata.name(bad, "") or _KINDS.get(unicodedata.category(bad), "an unassigned character")
        return (f"a name may not contain control or invisible characters (it has {_escape(bad)}, {what}): use "
                "letters, digits, spaces and punctuation")
    return None


def printable(text: str) -> str:
    """``text`` with every character :func:`name_problem` forbids written as ``\\n``, ``\\xNN``, ``\\uNNNN`` (and a
    backslash as ``\\\\``): always one line, nothing a terminal or a log reader could act on."""
    text = str(text)
    if not any(c == "\\" or _forbidden(c) for c in text):
        return text
    return "".join("\\\\" if c == "\\" else _escape(c) if _forbidden(c) else c for c in text)


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
