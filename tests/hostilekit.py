"""Hostile inputs for tests and benches: a PNG decompression bomb (built in a second, not decoded), a JPEG cut short
with its end marker put back, GIF and TIFF photos, and a multipart upload streamed to an ASGI app without a
Content-Length (the way a chunked HTTP body arrives), counting what the app read."""

from __future__ import annotations

import io
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 30000, height: int = 30000, rows: int = 64) -> bytes:
    """A valid 8-bit grey PNG of ``width`` x ``height`` black pixels (30000 x 30000: about 880 KB, 900 Mpx): one
    deflate block of ``rows`` rows, compressed once and repeated (full flush), with the stream's real adler32."""
    row = b"\x00" + bytes(width)
    block = row * rows
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = z.compress(block) + z.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(height, rows)
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(block, adler)
    tail = b""
    if rest:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        tail = z.compress(row * rest) + z.flush(zlib.Z_FULL_FLUSH)
        adler = zlib.adler32(row * rest, adler)
    stream = b"\x78\xda" + deflated * n + tail + b"\x03\x00" + struct.pack(">I", adler)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", stream) + _chunk(b"IEND", b""))


def cut_jpeg(data: bytes, keep: float = 0.6) -> bytes:
    """A JPEG cut after ``keep`` of its bytes with an end marker (FFD9) appended: libjpeg decodes it without an
    error, the missing rows uniform grey (what issue 23 enrolled)."""
    return data[:int(len(data) * keep)] + b"\xff\xd9"


def as_format(png_or_jpeg: bytes, fmt: str) -> bytes:
    """The same picture as a GIF or TIFF (Pillow)."""
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(png_or_jpeg)) as im:
        im.convert("RGB").save(out, format=fmt)
    return out.getvalue()


async def stream_upload(app, path: str, headers: list[tuple[bytes, bytes]], fields: dict[str, str], filename: str,
                        total: int, chunk: int = 64 << 10, client=("127.0.0.1", 50000)) -> dict:
    """POST a multipart form to the ASGI ``app`` with no Content-Length: the fields, then a file part of ``total``
    bytes sent ``chunk`` at a time, generated as they are asked for. Returns the status, the body and how many
    bytes the app asked for (``read``)."""
    boundary = b"hostileboundary7"
    head = b"".join(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + k.encode() + b"\"\r\n\r\n"
                    + v.encode() + b"\r\n" for k, v in fields.items())
    head += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"" + filename.encode()
             + b"\"\r\nContent-Type: image/png\r\n\r\n")
    state = {"read": 0, "sent_head": False, "left": total, "done": False}
    sent: list[dict] = []

    async def receive():
        if not state["sent_head"]:
            state["sent_head"] = True
            state["read"] += len(head)
            return {"type": "http.request", "body": head, "more_body": True}
        if state["left"] > 0:
            n = min(chunk, state["left"])
            state["left"] -= n
            state["read"] += n
            return {"type": "http.request", "body": b"\x00" * n, "more_body": True}
        if not state["done"]:
            state["done"] = True
            end = b"\r\n--" + boundary + b"--\r\n"
            state["read"] += len(end)
            return {"type": "http.request", "body": end, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": client,
             "server": ("testserver", 443),
             "headers": [(b"host", b"testserver"),
                         (b"content-type", b"multipart/form-data; boundary=" + boundary),
                         (b"transfer-encoding", b"chunked"), *headers]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return {"status": start["status"], "body": body.decode("utf-8", "replace"), "read": state["read"]}
