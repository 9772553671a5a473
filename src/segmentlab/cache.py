"""A small on-disk cache of DataFrames: Parquet plus a JSON manifest, written atomically.

An entry is trusted only when its manifest exists and the Parquet file matches the byte size and
SHA-256 the manifest records. Files are written to a temporary name and renamed into place, the
manifest last, so an interrupted or failed write (disk full, SIGKILL) leaves no entry that a
later run would trust: it is recomputed instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable object, independent of dict key order."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_hash(path: str | os.PathLike, length: int = 16) -> str:
    """Hex digest of a file's bytes (content, not name or modification time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class FrameCache:
    """Named DataFrames plus a metadata dict per key, under one directory.

    Parameters
    ----------
    directory : path
        Where entries live (created on first write).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def _path(self, key: str, name: str) -> Path:
        return self.directory / f"{key}.{name}.parquet"

    def load(self, key: str) -> tuple[dict[str, pd.DataFrame], dict] | None:
        """Return ``(frames, meta)`` for a verified entry, or None when absent or corrupt."""
        try:
            manifest = json.loads((self.directory / f"{key}.json").read_text())
            frames = {}
            for name, spec in manifest["frames"].items():
                path = self._path(key, name)
                if path.stat().st_size != spec["size"] or file_hash(path, 64) != spec["sha256"]:
                    return None
                frames[name] = pd.read_parquet(path)
        except (OSError, ValueError, KeyError):
            return None
        return frames, manifest["meta"]

    def save(self, key: str, frames: dict[str, pd.DataFrame], meta: dict) -> None:
        """Store frames (index included) and a JSON-serialisable meta dict under ``key``."""
        specs = {}
        for name, frame in frames.items():
            path = self._path(key, name)
            _atomic_write_bytes(path, lambda tmp, frame=frame: frame.to_parquet(tmp))
            specs[name] = {"size": path.stat().st_size, "sha256": file_hash(path, 64)}
        manifest = json.dumps({"frames": specs, "meta": meta}, default=str)
        _atomic_write_bytes(self.directory / f"{key}.json", lambda tmp: Path(tmp).write_text(manifest))
