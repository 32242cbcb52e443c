"""Reading zip files (and the small documents in them) that come from users, within bounds.

Voice packages, retrieval indexes (``.svcindex``) and torch checkpoints (``.pt``/``.pth``,
which ``torch.save`` writes as zips) all arrive as uploads. Before any member is read, the
zip's directory is checked as a whole:

- the end-of-directory record first (entry count, directory size), so a directory of
  millions of entries is refused before :mod:`zipfile` parses it;
- every member: a safe name (no absolute path, no ``..``, no drive, no NUL, no duplicate),
  not encrypted, stored or deflated (what we and torch write), its declared size within its
  cap, a stored member's sizes equal, a deflated one's ratio within ``ratio:1`` (members
  under ``tiny`` bytes are exempt: a 2 KB YAML compresses far better than weights do) and
  its compressed bytes inside the file;
- the sum of the declared sizes within the archive's total cap.

A member is then read in 1 MiB chunks into a buffer of its declared size, checking
``should_stop()`` between chunks; reading past the declared size is an error, and so is a
CRC that does not match (a directory that lies about a size gets the member truncated, then
refused). Every failure is a plain :class:`~svc_core.errors.IncompatibleError` (or the error
class the caller asks for), never a ``zipfile`` or ``zlib`` exception.

The caps, sized from real files (so-vits-svc 5.0's base model: a 29.5 M-parameter
generator, of which the inference keys we keep are 20.0 M = 80 MB in fp32, and a 23.5 M
discriminator; :data:`svc_core.retrieval.MAX_VECTORS` = 200,000 vectors per feature, the
widest feature whisper large's 1280-d PPG plus 256-d HuBERT-soft):

======================  ==========  ======================================================
member                  cap         a real one
======================  ==========  ======================================================
voice package (.zip)    64 entries  5 (voice.json, config.yaml, generator.pt, speaker,
                        3 GiB all   index): ≤ 1.4 GB with the largest possible index
``voice.json``          1 MiB       1-15 KB (provenance, a ~60-bin pitch histogram)
``config.yaml``         1 MiB       ~2 KB; also the cap of every YAML we parse
``generator.pt``        1 GiB       80 MB fp32 for 5.0's base sizes (12× headroom)
``speaker.spk.npy``     64 KiB      1,152 bytes (256 float32 + the .npy header)
``retrieval.svcindex``  2 GiB       ≤ 1.27 GB: 200k × (1280 + 256) × 4 B + IVF centroids
other members           64 MiB      none (never read; they count towards the total)
retrieval index         8 entries   3 (index.json, ppg.faiss, vec.faiss)
                        2 GiB all   ≤ 1.27 GB, as above
``index.json``          64 KiB      ~300 bytes
``*.faiss``             1.5 GiB     ≤ 1.05 GB: 200k × 1280 × 4 B + 5,128 centroids + ids
torch file (.pt/.pth)   50,000      ~4,300 for a 5.0 training checkpoint (one record per
                        entries     tensor: G 1,017, D 183, AdamW's moments and steps)
                        2 GiB all   ~640 MB: (29.5 M + 23.5 M) × 3 (weights, exp_avg,
                                    exp_avg_sq) × 4 B; the pretrain ~212 MB
``data.pkl``            64 MiB      < 1 MB (the pickle of names, shapes and ``hp_str``)
one tensor record       1 GiB       the largest 5.0 tensor is 21 MB (an MSD conv)
======================  ==========  ======================================================

The ratio cap is 100:1: weights and faiss vectors are float32 and barely compress (a
deflated copy is 1.1-1.6:1; we store them), so only a forgery reaches 100:1, while deflate's
own limit is ~1032:1. With it, an upload of ``n`` bytes expands to at most ``100·n`` (and
never beyond the total cap), instead of 2 GiB per member from a 2 MB file.

YAML (:func:`load_yaml`) is capped at 1 MiB before it is parsed (``yaml.safe_load`` only)
and at :data:`MAX_TREE_VALUES` values after, counting every alias as often as it is used
(``[*a, *a, …]`` costs nothing to parse but millions of steps to walk).
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from svc_core.errors import IncompatibleError, SvcError
from svc_core.progress import StopFn, check_stop

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CHUNK = 1 * MiB
MAX_YAML_BYTES = 1 * MiB  # a real config.yaml or 5.0 hparams is ~2 KB
MAX_TREE_VALUES = 10_000  # values in a parsed YAML document (a real config has ~120)
_ENTRY_BYTES = 1 * KiB  # directory bytes per entry allowed on average (real: ~70)
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,  # zipfile: "File is encrypted, password required"
)


@dataclass(frozen=True)
class ZipLimits:
    """What a kind of zip may hold (see the module docstring for the numbers and why).

    Attributes:
        members: the most entries.
        total: the most bytes all members declare together (uncompressed).
        member: a member's cap when ``caps`` names none for it.
        caps: caps by exact name, else by the last path component (``data.pkl``).
        ratio: the most ``file_size / compress_size`` of a member of ``tiny`` bytes or more.
        tiny: members smaller than this are exempt from the ratio cap.
    """

    members: int
    total: int
    member: int
    caps: Mapping[str, int] = field(default_factory=dict)
    ratio: int = 100
    tiny: int = 64 * KiB

    def cap_for(self, name: str) -> int:
        if name in self.caps:
            return self.caps[name]
        return self.caps.get(name.rsplit("/", 1)[-1], self.member)


VOICE_PACKAGE_LIMITS = ZipLimits(
    members=64,
    total=3 * GiB,
    member=64 * MiB,
    caps={
        "voice.json": 1 * MiB,
        "config.yaml": MAX_YAML_BYTES,
        "generator.pt": 1 * GiB,
        "speaker.spk.npy": 64 * KiB,
        "retrieval.svcindex": 2 * GiB,
    },
)
RETRIEVAL_INDEX_LIMITS = ZipLimits(
    members=8,
    total=2 * GiB,
    member=1 * MiB,
    caps={"index.json": 64 * KiB, "ppg.faiss": 3 * GiB // 2, "vec.faiss": 3 * GiB // 2},
)
TORCH_FILE_LIMITS = ZipLimits(
    members=50_000, total=2 * GiB, member=1 * GiB, caps={"data.pkl": 64 * MiB}
)


def short(value: object, limit: int = 300) -> str:
    """``str(value)`` cut to ``limit`` characters: messages of hostile input stay small (a
    job's error is stored and shown)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _unsafe_name(name: str) -> bool:
    parts = re.split(r"[/\\]", name)
    return (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or bool(_DRIVE.match(name))
        or any(p == ".." for p in parts)
    )


class SafeZip:
    """A zip whose directory passed :class:`ZipLimits`; members are read with bounds.

    Use :func:`open_zip`. A context manager; closing closes the file it opened.
    """

    def __init__(
        self,
        zf: zipfile.ZipFile,
        what: str,
        error: type[SvcError],
        owned: IO[bytes] | None = None,
    ):
        self.zf = zf
        self.what = what
        self.error = error
        self._owned = owned  # the file open_zip opened (closed with this)
        self._infos = {zi.filename: zi for zi in zf.infolist()}

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.zf.close()
        finally:
            if self._owned is not None:
                self._owned.close()

    @property
    def names(self) -> list[str]:
        return list(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._infos

    def info(self, name: str) -> zipfile.ZipInfo:
        zi = self._infos.get(name)
        if zi is None:
            raise self.error(f"{self.what} lacks {name}")
        return zi

    def _chunks(self, name: str, should_stop: StopFn | None) -> Iterator[bytes]:
        """The member's bytes, exactly its declared size, in chunks (read errors: plain)."""
        zi = self.info(name)
        left = zi.file_size
        try:
            with self.zf.open(zi) as f:
                while left > 0:
                    check_stop(should_stop)
                    data = f.read(min(CHUNK, left))
                    if not data:
                        raise self.error(
                            f"{self.what}: {name} ends before the {zi.file_size} bytes its "
                            "directory entry declares (the file is damaged)"
                        )
                    left -= len(data)
                    yield data
                if f.read(1):
                    raise self.error(
                        f"{self.what}: {name} holds more than the {zi.file_size} bytes its "
                        "directory entry declares"
                    )
        except _READ_ERRORS as exc:
            raise self.error(f"{self.what}: {name} is damaged ({short(exc)})") from exc

    def read(self, name: str, should_stop: StopFn | None = None) -> bytearray:
        """A member's bytes (at most its declared size, which passed its cap)."""
        zi = self.info(name)
        buf = bytearray(zi.file_size)
        pos = 0
        for data in self._chunks(name, should_stop):
            buf[pos : pos + len(data)] = data
            pos += len(data)
        return buf

    def copy_to(
        self, name: str, dest: str | os.PathLike, should_stop: StopFn | None = None
    ) -> Path:
        """Stream a member into ``dest`` (write errors, a full disk included, pass through)."""
        dest = Path(dest)
        with open(dest, "wb") as out:
            for data in self._chunks(name, should_stop):
                out.write(data)
        return dest


def _archive_size(fp: IO[bytes]) -> int:
    pos = fp.tell()
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    fp.seek(pos)
    return size


def _check_end_record(fp: IO[bytes], limits: ZipLimits, what: str, error, not_zip: str) -> None:
    """Entry count and directory size from the end record, before zipfile parses them."""
    end_rec_data = getattr(zipfile, "_EndRecData", None)  # private, in CPython since 2.x
    if end_rec_data is None:  # pragma: no cover - a Python without it: zipfile's own checks
        return
    try:
        end = end_rec_data(fp)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise error(not_zip) from exc
    if end is None:
        raise error(not_zip)
    entries, directory = int(end[4]), int(end[5])  # _ECD_ENTRIES_TOTAL, _ECD_SIZE
    if entries > limits.members:
        raise error(f"{what} has {entries} entries; at most {limits.members} are accepted")
    if directory > limits.members * _ENTRY_BYTES:
        raise error(f"{what}: its zip directory is {_size(directory)}, far more than it needs")


def check_directory(zf: zipfile.ZipFile, archive_bytes: int, limits: ZipLimits, what: str, error):
    """Check every directory entry against ``limits`` (see the module docstring)."""
    infos = zf.infolist()
    if len(infos) > limits.members:
        raise error(f"{what} has {len(infos)} entries; at most {limits.members} are accepted")
    seen: set[str] = set()
    total = packed = 0
    for zi in infos:
        name = zi.filename
        shown = name if len(name) <= 80 else name[:77] + "..."
        if _unsafe_name(name):
            raise error(f"{what} holds a member with an unsafe name: {shown!r}")
        if name in seen:
            raise error(f"{what} holds {shown!r} twice")
        seen.add(name)
        if zi.flag_bits & 0x1:
            raise error(f"{what}: {shown} is encrypted")
        if zi.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(f"{what}: {shown} is compressed with an unsupported method")
        cap = limits.cap_for(name)
        if zi.file_size > cap:
            raise error(
                f"{what}: {shown} is {_size(zi.file_size)} uncompressed; at most {_size(cap)} "
                "is accepted"
            )
        if zi.compress_type == zipfile.ZIP_STORED and zi.compress_size != zi.file_size:
            raise error(f"{what}: the directory entry of {shown} is inconsistent")
        if zi.file_size >= limits.tiny and zi.file_size > limits.ratio * max(zi.compress_size, 1):
            raise error(
                f"{what}: {shown} would expand {zi.file_size // max(zi.compress_size, 1)}-fold "
                f"({_size(zi.compress_size)} to {_size(zi.file_size)}); more than "
                f"{limits.ratio}:1 is refused as a zip bomb"
            )
        if zi.header_offset + zi.compress_size > archive_bytes:
            raise error(f"{what}: {shown} lies outside the file (it is cut short or damaged)")
        total += zi.file_size
        packed += zi.compress_size
    if total > limits.total:
        raise error(
            f"{what} holds {_size(total)} uncompressed; at most {_size(limits.total)} is accepted"
        )
    if packed > archive_bytes:
        raise error(f"{what}: its directory declares more data than the file holds")


def open_zip(
    source: str | os.PathLike | IO[bytes],
    limits: ZipLimits,
    what: str,
    *,
    not_zip: str | None = None,
    error: type[SvcError] = IncompatibleError,
) -> SafeZip:
    """Open a zip (a path or a seekable binary file) whose directory passes ``limits``.

    Args:
        what: how messages name the file (``"voice package voice.zip"``).
        not_zip: the message for a file that is not a zip (default: ``"{what} is not a zip
            file"``).
        error: the error class raised.
    """
    not_zip = not_zip or f"{what} is not a zip file"
    opened = None
    try:
        fp: IO[bytes]
        if isinstance(source, (str, os.PathLike)):
            fp = opened = open(source, "rb")  # noqa: SIM115 - closed by SafeZip or below
        else:
            fp = source
        size = _archive_size(fp)
        _check_end_record(fp, limits, what, error, not_zip)
        fp.seek(0)
        try:
            zf = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise error(not_zip) from exc
        try:
            check_directory(zf, size, limits, what, error)
        except BaseException:
            zf.close()
            raise
    except BaseException:
        if opened is not None:
            opened.close()
        raise
    return SafeZip(zf, what, error, opened)


def check_zip(
    source: str | os.PathLike | IO[bytes],
    limits: ZipLimits,
    what: str,
    *,
    not_zip: str | None = None,
    error: type[SvcError] = IncompatibleError,
) -> None:
    """Check a zip's directory only (e.g. a torch file before ``torch.load`` reads it)."""
    if isinstance(source, (str, os.PathLike)):
        open_zip(source, limits, what, not_zip=not_zip, error=error).close()
        return
    pos = source.tell()
    open_zip(source, limits, what, not_zip=not_zip, error=error).close()
    source.seek(pos)


def check_tree(obj: Any, what: str, *, budget: int = MAX_TREE_VALUES, error=IncompatibleError):
    """Refuse a parsed document with more than ``budget`` values, counting every reference:
    YAML aliases share one object, so ``[*a, *a, …]`` of a long ``&a`` list stays small in
    memory but becomes millions of values for whoever walks it."""
    stack = [obj]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            raise error(f"{what} holds more than {budget} values")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def load_yaml(
    data: bytes | bytearray | str,
    what: str,
    *,
    cap: int = MAX_YAML_BYTES,
    error: type[SvcError] = IncompatibleError,
) -> Any:
    """``yaml.safe_load`` of at most ``cap`` bytes (checked before parsing) and at most
    :data:`MAX_TREE_VALUES` values; any failure is ``error`` with a plain message."""
    import yaml

    if len(data) > cap:
        raise error(f"{what} is larger than {_size(cap)}")
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        obj = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text") from exc
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise error(f"{what} is not valid YAML: {short(exc)}") from exc
    check_tree(obj, what, error=error)
    return obj


__all__ = [
    "MAX_YAML_BYTES",
    "RETRIEVAL_INDEX_LIMITS",
    "TORCH_FILE_LIMITS",
    "VOICE_PACKAGE_LIMITS",
    "SafeZip",
    "ZipLimits",
    "check_directory",
    "check_tree",
    "check_zip",
    "load_yaml",
    "open_zip",
    "short",
]
