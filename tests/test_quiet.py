"""The desktop libraries' chatter stays off the terminal (``edgeface.export.quiet``), unless ``-v``: a real
litert-torch conversion through edgeface's own ``to_tflite.export_fp32``, in a fresh process, as the demo and
``edgeface export`` run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (the train extra)")

SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
from edgeface.export.quiet import quiet_libraries
quiet_libraries(verbose=sys.argv[1] == "verbose")
import torch
from edgeface.export import to_tflite
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 8))
to_tflite.export_fp32(model, sys.argv[2], (1, 3, 8, 8))
print("converted", file=sys.stderr)
"""

NOISE = ("oneDNN custom operations", "absl::InitializeLog", "Estimated count of arithmetic ops", "torchao",
         "LiteRT-Torch Convert", "FutureWarning", "LeafSpec")


def _convert(tmp_path, mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LITERT_TORCH_SHOW_PROGRESS"}  # a demo run in this process sets it
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(tmp_path / f"{mode}.tflite")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{mode}.tflite").stat().st_size > 0
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_conversion_prints_none_of_the_libraries_chatter(tmp_path):
    quiet = _convert(tmp_path, "quiet")
    assert [n for n in NOISE if n in quiet] == [], quiet
    assert "converted" in quiet
    loud = _convert(tmp_path, "verbose")  # the same conversion, -v: the chatter is there to be hidden
    assert "oneDNN custom operations" in loud and "LiteRT-Torch Convert" in loud, loud
