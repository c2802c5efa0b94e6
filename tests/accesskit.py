"""Helpers for the access-control tests: a gate config with an [access] section, a gallery whose people carry
access records, and the runtime pieces AccessControl reads (rules, policy numbers)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from edgeface.access.credentials import ATTRIBUTE, hash_pin
from edgeface.config import parse_config
from edgeface.device.access.rules import load_access
from edgeface.device.policy import PolicyParams
from edgeface.gallery import Gallery

BASE = """
[model]
bundle = "/nonexistent/bundle"
gallery = "/nonexistent/people.gallery"
[camera]
source = "0"
"""


def config(access: str = "", extra: str = ""):
    return parse_config(BASE + extra + "\n[access]\n" + access)


def gallery_with(records: dict[str, dict], size: int = 8, seed: int = 0) -> Gallery:
    """Random unit embeddings (these tests are about who may enter when, not about faces) and access records;
    a record's "pin" may be given as plain digits and is hashed here."""
    rng = np.random.default_rng(seed)
    g = Gallery.new("f" * 64, size)
    for name, rec in records.items():
        p = g.add(name, rng.standard_normal((1, size)), person_id=name)
        rec = dict(rec)
        if isinstance(rec.get("pin"), str):
            rec["pin"] = hash_pin(rec["pin"])
        if rec:
            p.attributes[ATTRIBUTE] = rec
    return g


def runtime(cfg, gallery):
    """What AccessControl reads from the gate's runtime: ``access`` (the rules) and ``params`` (k, n, gap), with
    thresholds from a real calibration of the synthetic world of :mod:`scorekit`."""
    from scorekit import World

    from edgeface.scorer import COSINE

    th = World().thresholds(cfg.access, **cfg.policy.model_dump(include={"far", "margin_decades"}))
    return SimpleNamespace(access=load_access(cfg, gallery, COSINE, th), params=PolicyParams.from_config(cfg.policy, th),
                           config=cfg)
