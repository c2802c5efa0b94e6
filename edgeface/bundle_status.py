"""What a bundle says about the quality of its models: the int8 parity gate's verdict.

An export with ``--allow-degraded`` records the parity problems in ``notes.parity.degraded`` (lines such as
``"onnx_int8: mean cosine to the reference 0.9512 < 0.98"``). :func:`degraded_flags` returns those of one
model key; ``edgeface info`` shows them, and the gate refuses such a model unless ``[model] accept_degraded``.
"""

from __future__ import annotations


def degraded_flags(bundle, key: str) -> list[str]:
    parity = bundle.meta.notes.get("parity") if isinstance(bundle.meta.notes, dict) else None
    flags = parity.get("degraded") if isinstance(parity, dict) else None
    if not isinstance(flags, list):
        return []
    return [str(f) for f in flags if str(f).split(":", 1)[0].strip() == key]
