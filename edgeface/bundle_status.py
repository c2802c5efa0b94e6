"""What a bundle says about the quality of its models: the int8 parity gate's verdict.

The export records the parity problems in ``notes.parity.degraded`` (lines such as
``"tflite_int8: TAR@1e-3 drops 2.92 points (> 2.0)"``): an int8 model that failed the gate stays in the bundle,
flagged, when another int8 model passed or with ``--allow-degraded``. :func:`degraded_flags` returns those of one
model key; ``edgeface info`` shows them, :meth:`edgeface.bundle.Bundle.default_key` never picks such a model, and
the gate refuses it unless ``[model] accept_degraded``.
"""

from __future__ import annotations


def degraded_flags(bundle, key: str) -> list[str]:
    parity = bundle.meta.notes.get("parity") if isinstance(bundle.meta.notes, dict) else None
    flags = parity.get("degraded") if isinstance(parity, dict) else None
    if not isinstance(flags, list):
        return []
    return [str(f) for f in flags if str(f).split(":", 1)[0].strip() == key]


def degraded_models(bundle) -> dict[str, list[str]]:
    """Model key -> its parity problems, for every degraded model of the bundle."""
    return {k: degraded_flags(bundle, k) for k in bundle.meta.models if degraded_flags(bundle, k)}
