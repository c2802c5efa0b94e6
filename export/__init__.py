"""Desktop side of edgeface (``edgeface.export``): datasets and the aligned-crop cache, the embedder
network, losses and miners, training, evaluation of checkpoints, ONNX/TFLite export, int8 quantization and
the parity report. Needs the ``train`` extra (torch). Importing this package does not import torch; its modules do.
"""
