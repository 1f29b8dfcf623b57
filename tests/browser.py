"""The browser the dashboard tests drive: Debian's Chromium under Playwright, and a PNG reader.

Playwright's own browser download is not used (not every CI machine reaches it): scripts/
install-system-deps.sh installs Debian's chromium, and Playwright launches /usr/bin/chromium. The
flags keep a headless Chromium, run as root in CI, from trying the network on its own.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass

from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass(frozen=True)
class Pixels:
    """What a screenshot shows, roughly: how many colours, and how much of it is not white."""

    width: int
    height: int
    colours: Counter[tuple[int, ...]]

    @property
    def non_white_share(self) -> float:
        white = sum(n for c, n in self.colours.items() if min(c[:3]) >= 250)
        return 1 - white / (self.width * self.height)


def read_png(data: bytes) -> Pixels:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, bytearray()
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytearray(stride)
    colours: Counter[tuple[int, ...]] = Counter()
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, row, previous, bpp)
        colours.update(zip(*(row[i::bpp] for i in range(3)), strict=True))
        previous = row
    return Pixels(width, height, colours)


def _unfilter(kind: int, row: bytearray, up: bytearray, bpp: int) -> None:
    """Undo a PNG row filter in place (PNG spec, section 9)."""
    if kind == 0:
        return
    n = len(row)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        row[:] = bytes((a + b) & 0xFF for a, b in zip(row, up, strict=True))
    elif kind == 3:  # Average
        for i in range(n):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + up[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a = row[i - bpp] if i >= bpp else 0
            b = up[i]
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            row[i] = (row[i] + pred) & 0xFF
    else:
        raise AssertionError(f"unknown PNG filter {kind}")
