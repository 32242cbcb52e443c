"""One storage interface for uploads and artifacts, shared by the API and the workers.

Keys are relative, slash-separated paths chosen by the code (never by users), e.g.
``u/<user>/tracks/<track>/original.mp3``. The local backend maps them under one root
directory, which may be a shared volume for several machines. Writes go to a temporary file
in the same file system and are renamed into place, so a reader never sees half a file and a
crash never leaves one behind under the final name.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from svc_core.utils import atomic_path, atomic_write, file_sha256

# the disk, a quota or the process's file size limit is full
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


class StorageKeyError(ValueError):
    pass


@dataclass(frozen=True)
class Stored:
    key: str
    sha256: str
    size: int


class HashingWriter:
    """A file-like sink that hashes and counts what passes through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.size += len(data)
        return self._fh.write(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    # keys ------------------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        if not key or key.startswith("/") or "\\" in key or "\x00" in key:
            raise StorageKeyError(f"bad storage key: {key!r}")
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise StorageKeyError(f"bad storage key: {key!r}")
        p = (self.root / key).resolve()
        if self.root not in p.parents:
            raise StorageKeyError(f"bad storage key: {key!r}")
        return p

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    # writing ---------------------------------------------------------------------------------
    def temp_path(self, suffix: str = "") -> Path:
        """A fresh path on the storage file system (for atomic renames); caller removes it."""
        return self.root / ".tmp" / f"{uuid.uuid4().hex}{suffix}"

    @contextmanager
    def writer(self, key: str) -> Iterator[HashingWriter]:
        """Stream bytes into ``key``; committed only if the block exits without error."""
        with atomic_write(self.path(key), tmp_dir=self.root / ".tmp", fsync=True) as fh:
            yield HashingWriter(fh)

    def put_file(self, key: str, src: Path, *, move: bool = False) -> Stored:
        """Store a local file under ``key`` (copy, or move when on the same file system)."""
        digest = file_sha256(src)
        size = Path(src).stat().st_size
        with atomic_path(self.path(key), tmp_dir=self.root / ".tmp") as tmp:
            if move:
                shutil.move(str(src), tmp)
            else:
                shutil.copyfile(src, tmp)
        return Stored(key=key, sha256=digest, size=size)

    # deleting --------------------------------------------------------------------------------
    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        p = self.path(prefix.rstrip("/"))
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def get_storage(root: Path) -> LocalStorage:
    return LocalStorage(root)
