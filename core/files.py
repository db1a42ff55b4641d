"""Content-addressed file store for rendered documents and uploads.

Keys are derived from the SHA-256 of the bytes, so storing the same bytes twice is a
no-op that returns the same key; a re-rendered certificate that did not change costs
nothing and leaves one file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")


class InvalidKey(ValueError):
    """A key that is not a plain relative path inside the store."""


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int
    content_type: str


@runtime_checkable
class FileStore(Protocol):
    def put(self, data: bytes, content_type: str, ext: str) -> StoredFile:
        """Store ``data`` under its content hash; a second put of equal bytes is a no-op."""
        ...

    def open(self, key: str) -> bytes:
        """Return the bytes stored under ``key``; FileNotFoundError if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def path(self, key: str) -> Path:
        """Local filesystem path of ``key`` (for stores that have one)."""
        ...


def content_key(sha256: str, ext: str) -> str:
    """The store key for bytes with hex digest ``sha256``: ``ab/cd/abcd….ext``."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def normalize_ext(ext: str) -> str:
    """Lower-case ``ext`` without a leading dot; reject anything but 1-10 [a-z0-9]."""
    cleaned = ext.lower().removeprefix(".")
    if not _EXT_RE.match(cleaned):
        raise ValueError(f"bad file extension: {ext!r}")
    return cleaned


def check_key(key: str) -> PurePosixPath:
    """Validate that ``key`` is a relative, normalised POSIX path and return it.

    Rejects absolute paths, drive letters, backslashes, NUL, empty segments and any
    ``.``/``..`` segment, so a key can never address a file outside the store root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("empty key")
    if "\x00" in key or "\\" in key:
        raise InvalidKey(f"illegal character in key: {key!r}")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidKey(f"absolute key: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKey(f"key must not contain empty, '.' or '..' segments: {key!r}")
    return PurePosixPath(key)


class LocalFileStore:
    """A :class:`FileStore` on a local directory (a mounted volume in production).

    Writes go to a temporary file in the destination directory, are fsynced, and are
    then renamed over the final name with ``os.replace``, so a process killed mid-write
    leaves at most a stray ``.tmp-*`` file, never a truncated file under a real key.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        rel = check_key(key)
        full = self.root.joinpath(*rel.parts)
        # Defence in depth against symlinked directories pointing outside the root.
        if not full.resolve().is_relative_to(self.root):
            raise InvalidKey(f"key escapes the store root: {key!r}")
        return full

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def open(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def put(self, data: bytes, content_type: str, ext: str) -> StoredFile:
        """Store ``data``; idempotent: equal bytes map to the same key and one file.

        Side effect: creates the two fan-out directories and the file if it is not
        already present with the right size.
        """
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        key = content_key(sha, normalize_ext(ext))
        stored = StoredFile(key=key, sha256=sha, size=len(data), content_type=content_type)
        final = self.path(key)
        try:
            if final.stat().st_size == len(data):
                return stored
        except FileNotFoundError:
            pass
        final.parent.mkdir(parents=True, exist_ok=True)
        self._atomic_write(final, data)
        return stored

    @staticmethod
    def _atomic_write(final: Path, data: bytes) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; served files must be readable
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(final.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/filesystem.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
