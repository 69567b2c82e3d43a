"""A photo of an appointing decision: a tiny valid JPEG written without any imaging library.

The page is drawn in 8×8 blocks of one shade each (white paper, grey lines of text, a dark
seal by the signature), so every block has only its DC coefficient and the file
needs no DCT: a baseline greyscale JPEG of a few hundred bytes that any decoder opens.
"""

from __future__ import annotations

import random
import struct

WIDTH_BLOCKS, HEIGHT_BLOCKS = 12, 16
"""A portrait A4-like page of 96×128 pixels."""
DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
DC_VALUES = tuple(range(12))
"""The standard luminance DC Huffman table (ITU T.81, Annex K.3)."""
AC_BITS = (1,) + (0,) * 15
AC_VALUES = (0x00,)
"""An AC table with one code, end-of-block: every block is flat."""
QUANT = 8
"""With every quantiser at 8, a flat block's DC coefficient is its shade minus 128."""
PAPER, INK, SEAL = 245, 90, 60


def decision_photo(rng: random.Random) -> bytes:
    """A scanned-looking decision page: heading, lines of text of varied length, signature and seal."""
    shades = [[PAPER] * WIDTH_BLOCKS for _ in range(HEIGHT_BLOCKS)]
    for x in range(3, 9):
        shades[1][x] = INK  # the heading
    for y in range(3, 12):
        if y % 2:
            for x in range(1, 1 + rng.randint(6, WIDTH_BLOCKS - 2)):
                shades[y][x] = INK + rng.randint(0, 40)
    for y, x in ((13, 8), (13, 9), (14, 8), (14, 9)):
        shades[y][x] = SEAL
    return _jpeg(shades)


def _jpeg(shades: list[list[int]]) -> bytes:
    height, width = len(shades) * 8, len(shades[0]) * 8
    dc_codes = _codes(DC_BITS, DC_VALUES)
    (eob,) = _codes(AC_BITS, AC_VALUES).values()
    bits = _Bits()
    previous = 0
    for row in shades:
        for shade in row:
            dc = shade - 128
            diff, previous = dc - previous, dc
            size = abs(diff).bit_length()
            bits.put(*dc_codes[size])
            if size:
                bits.put(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.put(*eob)
    return b"".join([
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xDB, b"\x00" + bytes([QUANT]) * 64),
        _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
        _segment(0xC4, b"\x00" + bytes(DC_BITS) + bytes(DC_VALUES)),
        _segment(0xC4, b"\x10" + bytes(AC_BITS) + bytes(AC_VALUES)),
        _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
        bits.flush(),
        b"\xff\xd9",
    ])


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _codes(bits: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes: symbol → (code, length)."""
    codes, code, k = {}, 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[k]] = (code, length)
            code, k = code + 1, k + 1
        code <<= 1
    return codes


class _Bits:
    """Entropy-coded data: bits packed MSB first, 0xFF stuffed with 0x00, the last byte padded with 1s."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.count = 0

    def put(self, value: int, length: int) -> None:
        self.acc = (self.acc << length) | (value & ((1 << length) - 1))
        self.count += length
        while self.count >= 8:
            self.count -= 8
            self._byte((self.acc >> self.count) & 0xFF)
        self.acc &= (1 << self.count) - 1

    def flush(self) -> bytes:
        if self.count:
            self.put((1 << (8 - self.count)) - 1, 8 - self.count)
        return bytes(self.out)

    def _byte(self, byte: int) -> None:
        self.out.append(byte)
        if byte == 0xFF:
            self.out.append(0x00)
