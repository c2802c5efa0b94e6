"""Approximate cosine scores of a large gallery with an error bound, through onnxruntime's int8 matrix product.

A 100,000 x 128 float32 gallery is 51 MB: more than a CPU cache, so an exact float32 matrix-vector product is
bound by memory bandwidth (tens of ms on one core). Quantized to uint8 (one scale per row, zero point 128) it is
12.8 MB, and onnxruntime's ``MatMulInteger`` (MLAS, AVX2 / NEON kernels, the weight pre-packed because it is a
constant initializer) scores it in about 2 ms. The scores are exact integer dot products of the quantized
vectors, so each one is within a known bound of the float score:

    |q . m - q^ . m^| <= ||q - q^|| * ||m|| + ||q^|| * ||m - m^||

:class:`edgeface.match.Matcher` uses them only to pick candidates and recomputes the candidates' scores in
float32, falling back to the full float32 product when the bound cannot prove the top two people exact.

The small ONNX graph is written directly as protobuf bytes (:func:`_matmul_integer_model`), so the device
needs onnxruntime only, not the ``onnx`` package.
"""

from __future__ import annotations

import numpy as np

UINT8, INT32 = 2, 6  # onnx TensorProto data types
ZERO_POINT = 128


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _tensor(name: str, dtype: int, dims: tuple[int, ...], raw: bytes) -> bytes:
    """onnx TensorProto: dims (1), data_type (2), name (8), raw_data (9)."""
    return b"".join(_int(1, d) for d in dims) + _int(2, dtype) + _bytes(8, name) + _bytes(9, raw)


def _value_info(name: str, dtype: int, dims: tuple[int | str, ...]) -> bytes:
    """onnx ValueInfoProto with a tensor type; a str dim is symbolic."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, dtype) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def _matmul_integer_model(weights_u8: np.ndarray) -> bytes:
    """ModelProto of ``acc = MatMulInteger(a, W, a_zero, 128)``: a (n, D) uint8 input, W (D, rows) uint8 constant."""
    d, rows = weights_u8.shape
    node = _bytes(1, "a") + _bytes(1, "W") + _bytes(1, "a_zero") + _bytes(1, "W_zero") + _bytes(2, "acc") + \
        _bytes(4, "MatMulInteger")
    graph = (_bytes(1, node) + _bytes(2, "gallery_int8")
             + _bytes(5, _tensor("W", UINT8, (d, rows), np.ascontiguousarray(weights_u8).tobytes()))
             + _bytes(5, _tensor("W_zero", UINT8, (), bytes([ZERO_POINT])))
             + _bytes(11, _value_info("a", UINT8, ("n", d)))
             + _bytes(11, _value_info("a_zero", UINT8, ()))
             + _bytes(12, _value_info("acc", INT32, ("n", rows))))
    opset = _bytes(1, "") + _int(2, 10)
    return _int(1, 7) + _bytes(8, opset) + _bytes(7, graph)


def quantize_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric per-row uint8 (zero point 128): (codes (rows, D) uint8, scales (rows,), residual norms (rows,))."""
    m = np.asarray(m, np.float32)
    scale = np.abs(m).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.round(m / scale[:, None]), -127, 127)
    residual = np.linalg.norm(m - q * scale[:, None], axis=1)
    return (q + ZERO_POINT).astype(np.uint8), scale, residual.astype(np.float64)


def quantize_queries(e: np.ndarray) -> tuple[np.ndarray, np.uint8, float, np.ndarray]:
    """Asymmetric uint8 over the whole batch: (codes, zero point, scale, dequantized)."""
    lo, hi = min(float(e.min()), 0.0), max(float(e.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = np.uint8(np.clip(np.round(-lo / scale), 0, 255))
    codes = np.clip(np.round(e / scale) + int(zero), 0, 255).astype(np.uint8)
    return codes, zero, scale, (codes.astype(np.float32) - float(zero)) * np.float32(scale)


class Int8Scorer:
    """Approximate scores of queries against the rows of ``matrix`` (rows, D), each with its error bound."""

    def __init__(self, matrix: np.ndarray, threads: int = 1) -> None:
        import onnxruntime as ort

        codes, self.row_scale, residual = quantize_rows(matrix)
        self.max_residual = float(residual.max()) if len(residual) else 0.0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(_matmul_integer_model(codes.T), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def scores(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(approx (N, rows) float32, bound (N,)): |approx - exact cosine| <= bound for every row."""
        e = np.asarray(e, np.float32)
        codes, zero, scale, deq = quantize_queries(e)
        acc = self.session.run(None, {"a": codes, "a_zero": np.array(zero, np.uint8)})[0]
        approx = acc.astype(np.float32)
        approx *= self.row_scale[None, :] * np.float32(scale)
        q_err = np.linalg.norm(e.astype(np.float64) - deq, axis=1)
        bound = q_err + np.linalg.norm(deq.astype(np.float64), axis=1) * self.max_residual
        # float32 rounding of the products above: relative 1e-6 of at most 1, plus margin
        return approx, bound + 1e-5
