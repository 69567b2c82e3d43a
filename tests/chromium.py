"""Headless Chromium for the tests that look at a page or a PDF as a reader would.

`make test` installs Debian's chromium and the Noto fonts (`make browser`) when missing; a
machine without them fails these tests with that instruction rather than skipping them.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OFFLINE = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           "--host-resolver-rules=MAP * ~NOTFOUND"]
"""No request leaves the machine: every host resolves to nothing and every URL goes to a dead proxy."""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium fonts-noto-core)")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=120, check=True)


def png_colours(png: bytes) -> int:
    """How many distinct colours a screenshot has: a blank or failed page has one or two."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour_type = struct.unpack(">IIBB", png[16:26])
    data = b"".join(png[i + 8:i + 8 + struct.unpack(">I", png[i:i + 4])[0]]
                    for i in _chunks(png) if png[i + 4:i + 8] == b"IDAT")
    raw = zlib.decompress(data)
    channels = {2: 3, 6: 4}[colour_type]
    stride = width * channels + 1
    pixels = {raw[r * stride + 1 + c * channels:r * stride + 1 + (c + 1) * channels]
              for r in range(0, height, 7) for c in range(0, width, 7)}
    return len(pixels)


def _chunks(png: bytes) -> list[int]:
    offsets, i = [], 8
    while i < len(png):
        offsets.append(i)
        i += 12 + struct.unpack(">I", png[i:i + 4])[0]
    return offsets
