"""Small helpers every part of the engine (and the API's storage) shares.

* :func:`atomic_path`, :func:`atomic_write`, :func:`write_atomic`: write a file through a
  temporary file in the same directory and ``os.replace`` it into place, so a reader never
  sees half a file and a crash or an error never leaves one under the final name.
* :func:`file_sha256`: the sha256 of a file, read in 1 MiB blocks.
* :func:`resolve_device`: ``"auto"``/``"cpu"``/``"cuda"``/``"cuda:N"`` → a checked device name.
* :class:`LazyRegistry`: name → ``"module:attr"``, imported on first use.
* :class:`ModelCache`: a per-process, thread-safe cache that loads each key once.

Importing this module imports neither torch nor numpy (the API process uses it).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from svc_core.errors import BadInputError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

_CHUNK = 1 << 20


# --- files ----------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    suffix: str = ".tmp",
    tmp_dir: str | os.PathLike[str] | None = None,
    fsync: bool = False,
) -> Iterator[Path]:
    """Yield a fresh temporary path for ``path``; the block writes the file there.

    The temporary file is ``.<name>.<random><suffix>`` next to ``path`` (or in ``tmp_dir``,
    which must be on the same file system). When the block returns, it is renamed onto
    ``path`` (``os.replace``: atomic, replaces an existing file); when the block raises, it is
    removed and ``path`` is left as it was. ``path``'s folder is created if needed.

    Args:
        suffix: the temporary name's ending, for writers that pick a format from it (or that
            append one: ``np.save`` adds ``.npy`` to a name without it).
        tmp_dir: where the temporary file goes instead of ``path``'s folder.
        fsync: flush the file and the rename to disk (checkpoints, packages, uploads).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tmp_dir) if tmp_dir is not None else path.parent
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:12]}{suffix}"
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str = "utf-8",
    suffix: str = ".tmp",
    tmp_dir: str | os.PathLike[str] | None = None,
    fsync: bool = False,
) -> Iterator[IO[Any]]:
    """:func:`atomic_path` with the temporary file opened: ``mode`` ``"wb"`` (bytes) or
    ``"w"`` (text in ``encoding``). ``path`` is replaced only if the block returns."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a new file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path, suffix=suffix, tmp_dir=tmp_dir, fsync=fsync) as tmp:
        with open(tmp, mode, encoding=None if mode == "wb" else encoding) as f:
            yield f


def write_atomic(
    path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8"
) -> Path:
    """Write ``data`` (text in ``encoding``, or bytes) to ``path`` atomically."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with atomic_write(path, mode, encoding=encoding) as f:
        f.write(data)
    return Path(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


# --- devices --------------------------------------------------------------------------------

_CUDA = re.compile(r"cuda(?::(\d+))?")


def resolve_device(device: str) -> str:
    """The torch device name for ``device``.

    ``"auto"`` → ``"cuda"`` when a CUDA GPU is visible, else ``"cpu"``; ``"cpu"``, ``"cuda"``
    and ``"cuda:N"`` are returned unchanged once checked (torch is imported only to check
    CUDA). Callers that need a ``torch.device`` wrap the result.

    Raises:
        BadInputError: CUDA was asked for and no GPU (or not GPU ``N``) is visible, or the
            name is none of the above.
    """
    if device == "cpu":
        return device
    cuda = _CUDA.fullmatch(device)
    if device != "auto" and cuda is None:
        raise BadInputError(f"Unknown device '{device}': use cpu, cuda, cuda:N or auto.")
    import torch

    available = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if available else "cpu"
    if not available:
        raise BadInputError(f"Device '{device}' was requested but no CUDA GPU is available.")
    assert cuda is not None
    if cuda.group(1) is not None and int(cuda.group(1)) >= torch.cuda.device_count():
        raise BadInputError(
            f"Device '{device}' was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0 to "
            f"cuda:{torch.cuda.device_count() - 1})."
        )
    return device


# --- per-process caches ---------------------------------------------------------------------


class ModelCache(Mapping[K, V]):
    """A thread-safe, per-process cache that loads each key once.

    :meth:`get_or_load` runs ``load()`` outside the cache's lock, under a lock of that key
    only, so two threads asking for one key load it once while different keys load
    concurrently. A load that raises stores nothing (the next call tries again). Reading is
    the ``Mapping`` interface (``len``, ``in``, ``cache[key]``, iteration over the keys).

    Args:
        max_size: keep at most this many entries; the oldest goes first, before a new one
            loads (a worker serving a few voices should not hoard GPU memory). None = no limit.
    """

    def __init__(self, max_size: int | None = None) -> None:
        if max_size is not None and max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self._items: dict[K, V] = {}
        self._loading: dict[K, threading.Lock] = {}
        self._lock = threading.Lock()

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until ``room`` more fit (caller holds the lock)."""
        if self.max_size is not None:
            while self._items and len(self._items) + room > self.max_size:
                del self._items[next(iter(self._items))]

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The value for ``key``, from ``load()`` on first use."""
        with self._lock:
            if key in self._items:
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:  # another thread loaded it while this one waited
                    return self._items[key]
                self._evict(room=1)
            value = load()
            with self._lock:
                self._evict(room=1)
                self._items[key] = value
                self._loading.pop(key, None)
            return value

    def discard(self, where: Callable[[K], bool]) -> int:
        """Drop the entries whose key satisfies ``where``; returns how many went."""
        with self._lock:
            gone = [k for k in self._items if where(k)]
            for k in gone:
                del self._items[k]
        return len(gone)

    def clear(self) -> None:
        """Drop every entry (frees memory; the next use loads again)."""
        with self._lock:
            self._items.clear()

    def __getitem__(self, key: K) -> V:
        with self._lock:
            return self._items[key]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class LazyRegistry(Mapping[str, str], Generic[T]):
    """Names → ``"module:attr"`` targets, imported on first use (so that importing the
    registry's module does not import torch or other heavy libraries).

    The mapping interface is over the entries (name → target); :meth:`load` imports a target
    and :meth:`instance` builds one process-wide instance of it (:attr:`instances` holds those
    built so far, by entry name).

    Args:
        entries: name → ``"package.module:Attribute"``.
        unknown: how the error for an unknown name starts (``"unknown F0 method"`` gives
            ``unknown F0 method 'yin'; choose one of: ...``).
        aliases: other names → a name of ``entries``.
    """

    def __init__(
        self,
        entries: Mapping[str, str],
        *,
        unknown: str = "unknown name",
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        for name, target in entries.items():
            if target.count(":") != 1:
                raise ValueError(f"registry entry '{name}': '{target}' is not 'module:attr'")
        self._entries = dict(entries)
        self.aliases = dict(aliases or {})
        for alias, name in self.aliases.items():
            if name not in self._entries:
                raise ValueError(f"alias '{alias}' names no entry ('{name}')")
        self.unknown = unknown
        self._loaded: ModelCache[str, T] = ModelCache()
        self.instances: ModelCache[str, Any] = ModelCache()

    def names(self) -> list[str]:
        """The entries' names, sorted, then the aliases, sorted."""
        return sorted(self._entries) + sorted(self.aliases)

    def canonical(self, name: str) -> str:
        """The entry name for ``name`` (an alias or an entry name; others unchanged)."""
        return self.aliases.get(name, name)

    def check(self, name: str) -> str:
        """The entry name for ``name``.

        Raises:
            BadInputError: neither an entry nor an alias (the message lists the names).
        """
        canonical = self.canonical(name)
        if canonical not in self._entries:
            raise BadInputError(
                f"{self.unknown} '{name}'; choose one of: {', '.join(self.names())}"
            )
        return canonical

    def load(self, name: str) -> T:
        """The attribute registered under ``name``, imported on first use."""
        canonical = self.check(name)

        def load() -> T:
            module_name, attr = self._entries[canonical].split(":")
            return getattr(importlib.import_module(module_name), attr)

        return self._loaded.get_or_load(canonical, load)

    def instance(self, name: str) -> Any:
        """The process-wide instance of ``name``'s class (``load(name)()``, built once)."""
        canonical = self.check(name)

        def build() -> Any:
            cls: Any = self.load(canonical)
            return cls()

        return self.instances.get_or_load(canonical, build)

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
