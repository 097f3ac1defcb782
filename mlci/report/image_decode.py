"""Is this really a PNG or a JPEG, of a size a report can show? Checked before an image from
an artifact or a pull request's files is published, without an imaging library.

A PNG is walked chunk by chunk: the signature, an ``IHDR`` of a valid colour type and bit
depth, every chunk's CRC, no unknown critical chunk, one run of ``IDAT`` chunks whose zlib
stream inflates (streamed, never held) to exactly the bytes the header promises with a valid
filter byte on every row, and ``IEND`` as the last bytes of the file. A JPEG is walked marker
by marker: ``SOI``, a frame header (``SOFn``) with its dimensions, a scan, and ``EOI`` as the
last bytes. Either way each side is at most :data:`MAX_SIDE` pixels.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from dataclasses import dataclass

MAX_SIDE = 4096  # pixels, either side
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip
_SOF = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
_STEP = 1 << 20  # inflate this much at a time


@dataclass(frozen=True)
class Decoded:
    kind: str  # "png" | "jpg"
    width: int
    height: int


def decode(data: bytes) -> Decoded | str:
    """What ``data`` is, or why it is not a PNG or JPEG a report may show."""
    if data.startswith(PNG_MAGIC):
        return _png(data)
    if data.startswith(JPEG_MAGIC):
        return _jpeg(data)
    return "not a PNG or JPEG image (by its first bytes)"


def _sides(kind: str, width: int, height: int) -> Decoded | str:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        return f"{width}x{height} pixels (at most {MAX_SIDE}x{MAX_SIDE})"
    return Decoded(kind, width, height)


# ---- PNG ----


def _png(data: bytes) -> Decoded | str:
    pos, png = len(PNG_MAGIC), _Png()
    while pos < len(data) and png.last != b"IEND":
        if pos + 12 > len(data):
            return "PNG: a chunk is cut short"
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data) or not kind.isalpha():
            return "PNG: a chunk is cut short or malformed"
        body = data[pos + 8 : end]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end : end + 4])[0]:
            return f"PNG: the CRC of chunk {kind.decode('ascii')} is wrong"
        pos = end + 4
        problem = png.chunk(kind, body)
        if problem:
            return problem
    if png.last != b"IEND" or pos != len(data):
        return "PNG: no IEND chunk at the end of the file"
    return png.finish()


class _Png:
    """The chunks seen so far; the image data inflated as it comes (never held), checked
    against what IHDR promises."""

    def __init__(self) -> None:
        self.last = b""
        self.kinds: set[bytes] = set()
        self.colour = -1
        self.size = (0, 0)
        self.expected = 0
        self.done = 0
        self.starts: list[int] = []  # offset of each row's filter byte
        self.inflater = zlib.decompressobj()

    def chunk(self, kind: bytes, body: bytes) -> str | None:
        problem = self._check(kind, body)
        self.kinds.add(kind)
        self.last = kind
        return problem

    def _check(self, kind: bytes, body: bytes) -> str | None:
        if not self.kinds and kind != b"IHDR":
            return "PNG: the first chunk is not IHDR"
        if kind == b"IHDR":
            return self.start(body) if not self.kinds else "PNG: a second IHDR"
        if kind == b"IDAT":
            if b"IDAT" in self.kinds and self.last != b"IDAT":
                return "PNG: the IDAT chunks are not consecutive"
            if self.colour == 3 and b"PLTE" not in self.kinds:
                return "PNG: a palette image without PLTE"
            return self.feed(body)
        if kind == b"IEND":
            return "PNG: IEND is not empty" if body else None
        if kind != b"PLTE" and kind[:1].isupper():
            return f"PNG: unknown critical chunk {kind.decode('ascii')}"
        return None

    def start(self, header: bytes) -> str | None:
        if len(header) != 13:
            return "PNG: IHDR is not 13 bytes"
        width, height, depth, colour, method, filtering, interlace = struct.unpack(
            ">IIBBBBB", header
        )
        sides = _sides("png", width, height)
        if isinstance(sides, str):
            return f"PNG: {sides}"
        if depth not in _DEPTHS.get(colour, ()) or method or filtering or interlace > 1:
            return "PNG: IHDR names no valid colour type, bit depth or method"
        self.colour, self.size = colour, (width, height)
        bits = _CHANNELS[colour] * depth
        passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
        for x0, y0, dx, dy in passes:
            w, h = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if w <= 0 or h <= 0:
                continue
            row = 1 + (w * bits + 7) // 8
            self.starts += [self.expected + i * row for i in range(h)]
            self.expected += h * row
        return None

    def feed(self, chunk: bytes) -> str | None:
        pending = chunk
        while pending:
            try:
                out = self.inflater.decompress(pending, _STEP)
            except zlib.error:
                return "PNG: the image data is not a valid zlib stream"
            pending = self.inflater.unconsumed_tail
            if self.done + len(out) > self.expected:
                return "PNG: the image data holds more than its rows"
            first = bisect.bisect_left(self.starts, self.done)
            last = bisect.bisect_left(self.starts, self.done + len(out))
            if any(out[s - self.done] > 4 for s in self.starts[first:last]):
                return "PNG: a row has no valid filter type"
            self.done += len(out)
            if self.inflater.eof and (pending or self.inflater.unused_data):
                return "PNG: bytes after the end of the image data"
        return None

    def finish(self) -> Decoded | str:
        if b"IDAT" not in self.kinds:
            return "PNG: no image data (IDAT)"
        if not self.inflater.eof or self.done != self.expected:
            return "PNG: the image data ends before its last row"
        return Decoded("png", *self.size)


# ---- JPEG ----


def _jpeg(data: bytes) -> Decoded | str:
    pos, size, scanned = 2, None, False
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return "JPEG: a segment does not start with a marker"
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= len(data):
            break
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            if pos + 2 != len(data):
                return "JPEG: bytes after the end of the image (EOI)"
            if size is None or not scanned:
                return "JPEG: no frame or no scan before the end of the image"
            return _sides("jpg", size[1], size[0])
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if marker in (0x00, 0xD8) or pos + 4 > len(data):
            return "JPEG: a misplaced marker"
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return "JPEG: a segment is cut short"
        if marker in _SOF:
            if length < 8 or size is not None:
                return "JPEG: a malformed or second frame header"
            size = struct.unpack(">HH", data[pos + 5 : pos + 9])  # height, width
        if marker == 0xDA:  # SOS: entropy-coded data follows, up to the next real marker
            if size is None:
                return "JPEG: a scan before the frame header"
            scanned = True
            end = _after_scan(data, end)
        pos = end
    return "JPEG: no EOI marker at the end of the file"


def _after_scan(data: bytes, pos: int) -> int:
    """The offset of the first marker after entropy-coded data starting at ``pos``."""
    while True:
        at = data.find(b"\xff", pos)
        if at < 0 or at + 1 >= len(data):
            return len(data)
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = at + 1 if following == 0xFF else at + 2
            continue
        return at
