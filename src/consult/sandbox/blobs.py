"""File contents (form media, submission attachments) stored once, by content hash.

Files live at `<data dir>/blobs/<aa>/<sha256>`: the path is derived from the content's
hash only, never from a client-supplied name, so a name like `../../etc/passwd` can be
stored and served back as a name but can never reach the filesystem.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .store import Store


class BlobStore:
    """Content-addressed files plus their `blobs` rows (md5 for ETags and manifests)."""

    def __init__(self, store: Store, root: Path):
        self.store = store
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes, content_type: str | None) -> int:
        """Store the bytes (once) and return the blob id."""
        sha256 = hashlib.sha256(data).hexdigest()
        row = self.store.one("SELECT id FROM blobs WHERE sha256 = ?", sha256)
        if row is not None:
            return int(row["id"])
        path = self._path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return self.store.insert(
            "INSERT INTO blobs (sha256, md5, size, content_type) VALUES (?, ?, ?, ?)",
            sha256,
            hashlib.md5(data).hexdigest(),
            len(data),
            content_type,
        )

    def read(self, blob_id: int) -> tuple[bytes, str, str]:
        """The bytes, md5 and content type of a blob."""
        row = self.store.one("SELECT sha256, md5, content_type FROM blobs WHERE id = ?", blob_id)
        if row is None:
            raise KeyError(blob_id)
        return (
            self._path(row["sha256"]).read_bytes(),
            row["md5"],
            row["content_type"] or "application/octet-stream",
        )
