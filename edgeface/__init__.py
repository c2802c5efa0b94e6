"""edgeface: face-recognition door access on edge hardware.

The shared core (this package) is torch-free: detection, alignment, the model
bundle, embedder runtimes, the gallery file, matching, metrics and config.
The desktop side lives in :mod:`edgeface.export` (needs torch), the door side
in :mod:`edgeface.device` (never imports torch).
"""

__version__ = "0.1.0"
