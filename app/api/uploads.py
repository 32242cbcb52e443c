"""Streaming multipart uploads: files go straight to storage, hashed on the way, with the
size limit enforced while the bytes arrive (never whole files in memory, never a spooled copy
of an oversized upload).

python-multipart's push parser is used directly instead of FastAPI's ``UploadFile``, which
spools the whole request before the handler runs and so cannot refuse an oversized upload
until it has been received in full.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.storage import HashingWriter, LocalStorage, is_disk_full

MAX_FIELD_BYTES = 64 * 1024
# form fields other than files (names, flags, options): every route has a handful
MAX_FIELDS = 32
MAX_FIELDS_TOTAL_BYTES = 256 * 1024
# After an upload goes over the limit, keep reading (and discarding) up to this much more so
# the client gets a clean 413 instead of a reset connection mid-send.
DRAIN_BYTES = 64 * 1024 * 1024

AUDIO_FORMATS = "WAV, FLAC, MP3, OGG/Opus, M4A/AAC, AIFF, WebM/Matroska, WavPack, CAF, AU, WMA"


class UploadError(HTTPException):
    pass


STORAGE_FULL = (
    "The server ran out of storage space while receiving {what}; nothing was kept. "
    "Free some space (or ask the administrator to) and upload again."
)


@dataclass
class UploadedFile:
    filename: str  # sanitised display name
    content_type: str
    tmp_path: Path
    size: int = 0
    sha256: str = ""
    head: bytes = b""
    field: str = "files"  # the form field it came in


@dataclass
class ParsedUpload:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        for f in self.files:
            f.tmp_path.unlink(missing_ok=True)


def safe_filename(name: str | None) -> str:
    """A display name from a user-supplied file name: no path, no control characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return (name or "upload")[:200]


def safe_extension(name: str) -> str:
    ext = Path(name).suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,5}", ext) else ""


def form_flag(fields: dict[str, str], name: str) -> bool:
    """A checkbox-like form field: 1/true/on/yes."""
    return fields.get(name, "false").strip().lower() in ("1", "true", "on", "yes")


def sniff_zip(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04"


def sniff_torch(head: bytes) -> bool:
    """A ``torch.save`` file: a zip archive (torch >= 1.6) or a legacy pickle."""
    return sniff_zip(head) or head[:2] in (b"\x80\x02", b"\x80\x04")


def sniff_npy(head: bytes) -> bool:
    return head[:6] == b"\x93NUMPY"


def sniff_text(head: bytes) -> bool:
    """Plain text (a YAML file): no NUL bytes, decodable as UTF-8 in its first bytes."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end is fine
        return exc.start >= len(head) - 3
    return True


def sniff_audio(head: bytes) -> bool:
    """True when the first bytes look like an audio container we can decode."""
    if len(head) < 4:
        return False
    if head[:4] in (b"RIFF", b"RF64", b"BW64"):
        return head[8:12] == b"WAVE"
    if head[:4] == b"FORM":
        return head[8:12] in (b"AIFF", b"AIFC")
    if head[:4] in (b"fLaC", b"OggS", b"wvpk", b"MAC ", b"caff", b".snd", b"\x1a\x45\xdf\xa3"):
        return True
    if head[:3] == b"ID3" or head[:5] == b"#!AMR":
        return True
    if head[4:8] == b"ftyp":  # MP4/M4A/3GP; ffmpeg takes the audio stream
        return True
    if head[:4] == b"\x30\x26\xb2\x75":  # ASF (WMA)
        return True
    # MPEG audio / ADTS AAC frame sync: 11 set bits, a valid layer
    return head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0


async def parse_upload(
    request: Request,
    storage: LocalStorage,
    *,
    max_file_bytes: int,
    max_files: int,
    file_field: str = "files",
    accept: Callable[[bytes], bool] | None = None,
    accept_what: str = f"an audio file we can read (supported: {AUDIO_FORMATS})",
    extra_file_fields: dict[str, tuple[Callable[[bytes], bool], str]] | None = None,
) -> ParsedUpload:
    """Stream a multipart/form-data body into temporary files on the storage volume.

    ``extra_file_fields``: other file fields allowed (at most one file each), with their own
    sniffing check and description. ``max_files`` counts the main field's files.

    Raises 400/413/415 ``HTTPException``s with plain messages; temporary files are removed on
    any error. The caller moves the files into their final keys.
    """
    extra = dict(extra_file_fields or {})
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in opts:
        raise UploadError(400, "Send the files as multipart/form-data.")
    declared = request.headers.get("content-length")
    limit_total = max_file_bytes * max_files + 1024 * 1024
    if declared and declared.isdigit() and int(declared) > limit_total + DRAIN_BYTES:
        raise UploadError(413, _too_large(max_file_bytes))

    out = ParsedUpload()
    state: dict = {
        "name": None,
        "filename": None,
        "ctype": "",
        "writer": None,
        "fh": None,
        "value": bytearray(),
        "headers": {},
        "hf": b"",
        "hv": b"",
        "error": None,
        "fields": 0,
        "field_bytes": 0,
        "ended": False,
    }

    def on_part_begin() -> None:
        state.update(
            name=None, filename=None, ctype="", writer=None, fh=None, value=bytearray(), headers={}
        )

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hf"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hv"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hf"].decode("latin-1").lower()] = state["hv"]
        state["hf"], state["hv"] = b"", b""

    def on_headers_finished() -> None:
        if state["error"] is not None:
            return
        disp, dopts = parse_options_header(state["headers"].get("content-disposition", b""))
        state["name"] = dopts.get(b"name", b"").decode("utf-8", "replace")
        if disp != b"form-data" or not state["name"]:
            state["error"] = UploadError(
                400, "Every part of the upload needs a 'Content-Disposition: form-data; name=…'."
            )
            return
        fn = dopts.get(b"filename")
        if fn is not None:
            name = state["name"]
            if name != file_field and name not in extra:
                state["error"] = UploadError(400, f"Unexpected file field '{name}'.")
                return
            same = sum(f.field == name for f in out.files)
            if name == file_field and same >= max_files:
                state["error"] = UploadError(400, f"At most {max_files} files per upload.")
                return
            if name != file_field and same >= 1:
                state["error"] = UploadError(400, f"Send one file in the form field '{name}'.")
                return
            up = UploadedFile(
                filename=safe_filename(fn.decode("utf-8", "replace")),
                content_type=state["headers"].get("content-type", b"").decode("latin-1")[:100]
                or "application/octet-stream",
                tmp_path=storage.temp_path(),
                field=name,
            )
            out.files.append(up)
            state["fh"] = open(up.tmp_path, "wb")  # noqa: SIM115 - closed in on_part_end
            state["writer"] = HashingWriter(state["fh"])
        else:
            state["fields"] += 1
            if state["fields"] > MAX_FIELDS:
                state["error"] = UploadError(413, f"At most {MAX_FIELDS} form fields per upload.")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["error"] is not None:
            return
        chunk = data[start:end]
        w = state["writer"]
        if w is not None:
            up = out.files[-1]
            if len(up.head) < 64:
                up.head += chunk[: 64 - len(up.head)]
            if w.size + len(chunk) > max_file_bytes:
                state["error"] = UploadError(413, _too_large(max_file_bytes, up.filename))
                return
            try:
                w.write(chunk)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                state["error"] = UploadError(507, STORAGE_FULL.format(what=f"'{up.filename}'"))
                return
        else:
            if len(state["value"]) + len(chunk) > MAX_FIELD_BYTES:
                state["error"] = UploadError(413, f"Form field '{state['name']}' is too large.")
                return
            state["field_bytes"] += len(chunk)
            if state["field_bytes"] > MAX_FIELDS_TOTAL_BYTES:
                state["error"] = UploadError(
                    413, f"The form fields are larger than {MAX_FIELDS_TOTAL_BYTES // 1024} KiB."
                )
                return
            state["value"] += chunk

    def on_part_end() -> None:
        if state["fh"] is not None:
            state["fh"].close()
            up = out.files[-1]
            up.size, up.sha256 = state["writer"].size, state["writer"].sha256
            state["fh"] = state["writer"] = None
        elif state["name"] and state["error"] is None:
            out.fields[state["name"]] = state["value"].decode("utf-8", "replace")

    parser = MultipartParser(
        opts[b"boundary"],
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": lambda: state.update(ended=True),
        },
    )
    drained = 0
    try:
        async for chunk in request.stream():
            if state["error"] is not None:
                drained += len(chunk)
                if drained > DRAIN_BYTES:
                    break
                continue
            parser.write(chunk)
        parser.finalize()
    except HTTPException:
        out.cleanup()
        raise
    except OSError as exc:  # the server's side: storage, not the client's body
        out.cleanup()
        if is_disk_full(exc):
            raise UploadError(507, STORAGE_FULL.format(what="the upload")) from exc
        raise
    except Exception as exc:  # noqa: BLE001 - malformed bodies are the client's error
        state["error"] = state["error"] or UploadError(400, f"Malformed upload: {exc}")
    finally:
        if state["fh"] is not None:
            try:
                state["fh"].close()
            except OSError:  # flushing the rest failed (disk full): the file is dropped anyway
                out.cleanup()
    if state["error"] is None and not state["ended"]:
        state["error"] = UploadError(
            400, "The upload was cut off before its end (the connection dropped?): send it again."
        )
    if state["error"] is not None:
        out.cleanup()
        raise state["error"]
    for up in out.files:
        if up.size == 0:
            out.cleanup()
            raise UploadError(400, f"'{up.filename}' is empty (0 bytes).")
        check, what = extra.get(up.field) or (accept or sniff_audio, accept_what)
        if not check(up.head):
            out.cleanup()
            raise UploadError(415, f"'{up.filename}' is not {what}.")
    return out


def _too_large(limit: int, name: str | None = None) -> str:
    what = f"'{name}'" if name else "The upload"
    return f"{what} is larger than the limit of {limit / 1024 / 1024:.0f} MiB."


def move_into(storage: LocalStorage, up: UploadedFile, key: str) -> None:
    final = storage.path(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(up.tmp_path, final)
