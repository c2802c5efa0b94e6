"""Run inside .venv-tflrt (tflite-runtime 2.14, numpy<2, no ai-edge-litert): embed crops with every TFLite model
of a bundle through edgeface.runtime and save them, for comparison with ai-edge-litert in the main venv.

    python tests/tflrt_embed.py BUNDLE CROPS.npy OUT.npz
"""

import sys
import time

import numpy as np

from edgeface.bundle import Bundle
from edgeface.runtime import open_embedder


def main(bundle_dir: str, crops_path: str, out_path: str) -> None:
    bundle = Bundle.load(bundle_dir)
    crops = np.load(crops_path)
    out = {}
    for key, mf in bundle.meta.models.items():
        if mf.format != "tflite":
            continue
        emb = open_embedder(bundle, model=key, threads=1)
        out[key] = emb.embed(crops)
        out[key + ".backend"] = np.array(emb.backend)
        t = time.perf_counter()
        for i in range(len(crops)):
            emb.embed(crops[i:i + 1])
        out[key + ".ms"] = np.array((time.perf_counter() - t) / len(crops) * 1e3)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
