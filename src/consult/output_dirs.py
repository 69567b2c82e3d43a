"""Folders the tool writes into: it never writes into, nor empties, a folder of the user's.

A folder the tool creates (or finds empty) gets a marker file; only a folder with the marker
may be reused or emptied. `consult demo --workdir .` in a checkout is refused instead of
deleting the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".consult-workdir"
_MARKER_TEXT = "Made by consult, which may empty this folder when it writes here again.\n"


class NotOurFolder(ValueError):
    """The folder holds files the tool did not put there; the message says what to do."""


def claim(folder: Path, *, option: str, empty: bool = False, create: bool = True) -> Path:
    """Make `folder` ours (create it, or adopt it when empty) and return it; `empty` clears a folder of ours.

    `option` is the command-line option that named the folder, for the message. With `create=False`
    a missing folder is left missing (for a command that may fail before it writes anything): `mark`
    it once written."""
    if not create and not folder.exists():
        return folder
    if folder.exists() and not folder.is_dir():
        raise NotOurFolder(f"{option} {folder} is a file, not a folder: give a folder")
    marked = (folder / MARKER).is_file()
    if folder.is_dir() and not marked and any(folder.iterdir()):
        raise NotOurFolder(f"{option} {folder} is not empty and was not made by consult, which will not write "
                           f"there: give a new or empty folder (or create {folder / MARKER} to allow it)")
    if empty and marked:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    return folder


def mark(folder: Path) -> None:
    """Mark a folder this run has just made (after `claim(create=False)` found it missing)."""
    if folder.is_dir() and not (folder / MARKER).is_file():
        (folder / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
