"""The desktop libraries' own chatter, kept off the terminal unless ``-v`` asks for it.

What torch, torchao, litert-torch and LiteRT's converter print on every export is not about the user's model:

* torchao logs at WARNING that it cannot load its CUDA kernels (``_C_mxfp8``, ``_C_cutlass_90a``) and that there
  is no Triton; torch's ONNX exporter that torchvision's detection operators are skipped; torch's pytree that an
  Enum registration is deprecated;
* torch's own ``FutureWarning`` about ``LeafSpec`` (raised inside torch.export, not by edgeface);
* litert-torch prints its conversion stages (``[START] LiteRT-Torch Convert ...``) and warns that a PT2E-converted
  graph module is "in training mode" (it was exported from an ``eval()`` model; the flag of the converted graph
  module cannot be changed);
* LiteRT's converter (a C++ library) writes absl INFO lines straight to the process's stderr: "All log messages
  before absl::InitializeLog()...", "oneDNN custom operations are on", "Estimated count of arithmetic ops".
  No environment variable reaches them (TF_CPP_MIN_LOG_LEVEL is not read by this build), so
  :func:`native_stderr_filtered` runs the conversion with file descriptor 2 in a temporary file and passes on
  every line but absl's INFO lines.

Warnings and errors of the libraries, and everything edgeface itself logs, still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

#: loggers whose WARNINGs are the noise above: held at ERROR
NOISY_LOGGERS = ("torchao", "torch.onnx._internal.exporter._registration", "torch.utils._pytree")
#: a native (absl) INFO line, or absl's preamble before its first line
NATIVE_NOISE = (re.compile(r"^I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "),
                re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"))


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


_TRAINING_MODE = _DropMessages("is converted in training mode")
_quiet = False


def quiet_libraries(verbose: bool = False) -> None:
    """Hold the libraries' chatter back for this process (before torch or litert-torch is imported); with
    ``verbose`` nothing is held back."""
    global _quiet
    if verbose or _quiet:
        return
    _quiet = True
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning)
    root = logging.getLogger()
    root.addFilter(_TRAINING_MODE)
    for handler in root.handlers:  # a record logged on a child logger skips the root's filters, not its handlers'
        handler.addFilter(_TRAINING_MODE)


def is_quiet() -> bool:
    return _quiet


@contextlib.contextmanager
def native_stderr_filtered():
    """Run the block with file descriptor 2 in a temporary file; afterwards, pass every line on to stderr but
    the native INFO lines (:data:`NATIVE_NOISE`). Without :func:`quiet_libraries`, nothing is held back."""
    if not _quiet:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not any(p.search(line) for p in NATIVE_NOISE)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
