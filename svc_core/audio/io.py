"""Reading and writing audio files.

Decoding goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1)
and falls back to the ``ffmpeg`` binary for everything else (m4a/AAC, Opus in WebM, ...).
Arrays are float32 ``[C, T]`` (channels first). Every failure is a :class:`BadAudioError`
with a message a user understands; nothing here raises a bare decoder exception.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from svc_core.errors import BadAudioError
from svc_core.utils import atomic_path

# Sample rates outside this range are refused: below it there is no singing voice left,
# above it a file is almost surely mislabelled.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 32


@dataclass(frozen=True)
class AudioInfo:
    """What a container says about its audio stream, before decoding."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise BadAudioError(
            "this file needs ffmpeg to decode, and ffmpeg is not installed "
            "(Debian/Ubuntu: apt-get install ffmpeg)"
        )
    return exe


def _ffprobe(path: Path) -> AudioInfo:
    exe = shutil.which("ffprobe")
    if exe is None:
        _ffmpeg()  # raises the install hint
        raise BadAudioError("ffprobe is missing next to ffmpeg")
    cmd = [
        exe,
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=codec_name,sample_rate,channels,duration:format=format_name,duration",
        "-of",
        "json",
        f"file:{path}",
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BadAudioError(f"'{path.name}' could not be read (probing timed out)") from exc
    try:
        data = json.loads(res.stdout or b"{}")
    except json.JSONDecodeError:
        data = {}
    streams = data.get("streams") or []
    if res.returncode != 0 or not streams:
        raise BadAudioError(f"'{path.name}' is not an audio file this server can read")
    st = streams[0]
    fmt = data.get("format") or {}
    try:
        sr = int(st.get("sample_rate") or 0)
        ch = int(st.get("channels") or 0)
        dur = float(st.get("duration") or fmt.get("duration") or 0.0)
    except (TypeError, ValueError) as exc:
        raise BadAudioError(f"'{path.name}' has an unreadable audio stream") from exc
    return AudioInfo(
        format=str(fmt.get("format_name") or "unknown").split(",")[0].upper(),
        subtype=str(st.get("codec_name") or "unknown").upper(),
        sample_rate=sr,
        channels=ch,
        frames=int(round(dur * sr)),
        duration_s=dur,
    )


def probe(path: str | os.PathLike) -> AudioInfo:
    """Describe an audio file without decoding it. Raises BadAudioError for non-audio."""
    path = Path(path)
    if not path.is_file():
        raise BadAudioError(f"'{path.name}' does not exist")
    if path.stat().st_size == 0:
        raise BadAudioError(f"'{path.name}' is empty (0 bytes)")
    try:
        info = sf.info(str(path))
        out = AudioInfo(
            format=info.format,
            subtype=info.subtype or "",
            sample_rate=int(info.samplerate),
            channels=int(info.channels),
            frames=int(info.frames),
            duration_s=float(info.frames) / float(info.samplerate or 1),
        )
    except (sf.LibsndfileError, RuntimeError, ValueError):
        out = _ffprobe(path)
    _check_info(path.name, out)
    return out


def _check_info(name: str, info: AudioInfo) -> None:
    if info.channels < 1:
        raise BadAudioError(f"'{name}' has no audio channels")
    if info.channels > MAX_CHANNELS:
        raise BadAudioError(f"'{name}' has {info.channels} channels; at most {MAX_CHANNELS}")
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise BadAudioError(
            f"'{name}' has a sample rate of {info.sample_rate} Hz; "
            f"supported: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )


def _decode_ffmpeg(path: Path, info: AudioInfo) -> np.ndarray:
    cmd = [
        _ffmpeg(),
        "-nostdin",
        "-v",
        "error",
        "-i",
        f"file:{path}",
        "-map",
        "0:a:0",
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-ac",
        str(info.channels),
        "-ar",
        str(info.sample_rate),
        "pipe:1",
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BadAudioError(f"'{path.name}' took too long to decode") from exc
    raw = res.stdout
    if res.returncode != 0 and not raw:
        msg = res.stderr.decode("utf-8", "replace").strip().splitlines()
        hint = f" ({msg[-1][:200]})" if msg else ""
        raise BadAudioError(f"'{path.name}' could not be decoded{hint}")
    n = len(raw) // (4 * info.channels)
    data = np.frombuffer(raw[: n * 4 * info.channels], dtype="<f4")
    return data.reshape(n, info.channels).T.copy()


def load_audio(
    path: str | os.PathLike, *, max_duration_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``[C, T]`` at its own sample rate.

    Raises:
        BadAudioError: not audio, empty, no decodable samples (truncated header), NaN/inf
            samples, or longer than ``max_duration_s``.
    """
    path = Path(path)
    info = probe(path)
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise BadAudioError(
            f"'{path.name}' is {info.duration_s:.0f} s long; the limit is {max_duration_s:g} s"
        )
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = data.T.copy()
    except (sf.LibsndfileError, RuntimeError, ValueError):
        audio, sr = _decode_ffmpeg(path, info), info.sample_rate
    if audio.shape[1] == 0:
        raise BadAudioError(f"'{path.name}' contains no audio samples (empty or truncated)")
    if max_duration_s is not None and audio.shape[1] / sr > max_duration_s + 1.0:
        raise BadAudioError(
            f"'{path.name}' is {audio.shape[1] / sr:.0f} s long; the limit is {max_duration_s:g} s"
        )
    if not np.isfinite(audio).all():
        raise BadAudioError(f"'{path.name}' contains invalid samples (NaN or infinity)")
    return audio, int(sr)


def save_wav(
    path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, subtype: str = "FLOAT"
) -> Path:
    """Write ``[C, T]`` or ``[T]`` audio as WAV atomically (temp file + rename).

    ``subtype``: ``FLOAT`` (32-bit float), ``PCM_16`` or ``PCM_24``. Files over 4 GiB are
    written as RF64 automatically by libsndfile.
    """
    path = Path(path)
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if subtype != "FLOAT":
        arr = np.clip(arr, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(tmp, arr.T, int(sample_rate), subtype=subtype, format="WAV")
    return path
