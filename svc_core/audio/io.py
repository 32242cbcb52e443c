"""Reading and writing audio files.

Decoding goes through soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1)
and falls back to the ``ffmpeg`` binary for everything else (m4a/AAC, Opus in WebM, ...).
Either way the samples arrive in blocks (:func:`decode_into`): limits are checked on the header
first (:func:`check_limits`, :func:`decoded_bytes`) and again on the samples as they come, and
nothing ever holds a file decoded at its own rate and layout unless the caller asks for it.
Arrays are float32 ``[C, T]`` (channels first). Every failure is a :class:`BadAudioError`
with a message a user understands; nothing here raises a bare decoder exception.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import soundfile as sf

from svc_core.audio.dsp import StreamResampler, to_channels
from svc_core.errors import BadAudioError
from svc_core.utils import atomic_path

# Sample rates outside this range are refused: below it there is no singing voice left,
# above it a file is almost surely mislabelled.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 32
# Decoding reads this many frames at a time (64 Ki frames: 2 MiB for 8 channels).
BLOCK_FRAMES = 1 << 16
# load_audio refuses a result larger than this (20 min of 44.1 kHz stereo is 0.4 GiB).
MAX_DECODED_BYTES = 1 << 30
FFMPEG_TIMEOUT_S = 1800.0


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


def check_limits(
    name: str,
    info: AudioInfo,
    *,
    max_duration_s: float | None = None,
    max_sample_rate: int | None = None,
) -> None:
    """Refuse, from the header alone, a file above the rate or duration limit."""
    if max_sample_rate is not None and info.sample_rate > max_sample_rate:
        raise BadAudioError(
            f"'{name}' has a sample rate of {info.sample_rate} Hz; the limit is "
            f"{max_sample_rate} Hz"
        )
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise BadAudioError(
            f"'{name}' is {info.duration_s:.0f} s long; the limit is {max_duration_s:g} s"
        )


def decoded_bytes(
    info: AudioInfo, *, sample_rate: int | None = None, channels: int | None = None
) -> int:
    """Bytes of ``info``'s audio decoded to float32 ``[C, T]``, from the header alone.

    ``sample_rate`` and ``channels`` (default: the file's) give the size after resampling and
    down-mixing: what a caller that keeps the result holds.
    """
    sr = sample_rate or info.sample_rate
    frames = math.ceil(info.frames * sr / max(info.sample_rate, 1))
    return frames * (channels or info.channels) * 4


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


class BlockSink(Protocol):
    """Receives a file's samples as consecutive float32 ``[C, t]`` blocks at its own rate."""

    def feed(self, block: np.ndarray) -> None: ...

    def finish(self) -> None:
        """Called once after the last block."""

    def close(self) -> None:
        """Release what the sink holds (called after finish, or when decoding failed)."""


class _SoundfileFailed(Exception):
    """libsndfile cannot decode the file (somewhere in it): decode with ffmpeg instead."""


def _soundfile_blocks(path: Path, block_frames: int) -> Iterator[np.ndarray]:
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise _SoundfileFailed from exc
    with f:
        while True:
            try:
                data = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise _SoundfileFailed from exc
            if data.shape[0] == 0:
                return
            yield data.T


def _drain(pipe: IO[bytes], tail: deque[bytes]) -> None:
    """Keep the last lines of ffmpeg's messages (a line is cut at 4 KiB: no unbounded read)."""
    for line in iter(lambda: pipe.readline(4096), b""):
        tail.append(line)


def _ffmpeg_blocks(path: Path, info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    """ffmpeg's float32 output read from its pipe block by block (never all of it at once)."""
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
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail: deque[bytes] = deque(maxlen=20)
    reader = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
    reader.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(FFMPEG_TIMEOUT_S, _kill)
    timer.daemon = True
    timer.start()
    frame_bytes = 4 * info.channels
    want = block_frames * frame_bytes
    got = 0
    try:
        while True:
            raw = proc.stdout.read(want)
            n = len(raw) // frame_bytes
            if n:
                got += n
                yield (
                    np.frombuffer(raw, dtype="<f4", count=n * info.channels)
                    .reshape(n, info.channels)
                    .T
                )
            if len(raw) < want:
                break
        rc = proc.wait()
        reader.join(timeout=5)
        if timed_out.is_set():
            raise BadAudioError(f"'{path.name}' took too long to decode")
        if rc != 0 and got == 0:
            lines = b"".join(tail).decode("utf-8", "replace").strip().splitlines()
            hint = f" ({lines[-1][:200]})" if lines else ""
            raise BadAudioError(f"'{path.name}' could not be decoded{hint}")
    finally:
        timer.cancel()
        if proc.poll() is None:  # the reader stopped early (a limit): stop ffmpeg too
            proc.kill()
            proc.wait()
        proc.stdout.close()
        reader.join(timeout=5)
        proc.stderr.close()


@dataclass
class Decoded:
    """What :func:`decode_into` saw: the sink that got every block, the length, the peak."""

    sink: BlockSink
    frames: int
    peak: float  # largest absolute sample over all channels (linear, 0 for silence)


def _feed(
    blocks: Iterator[np.ndarray],
    sink: BlockSink,
    name: str,
    sample_rate: int,
    max_duration_s: float | None,
) -> tuple[int, float]:
    n, peak = 0, 0.0
    try:
        for block in blocks:
            n += block.shape[1]
            if max_duration_s is not None and n / sample_rate > max_duration_s + 1.0:
                raise BadAudioError(
                    f"'{name}' is longer than its header says (more than {n / sample_rate:.0f} "
                    f"s); the limit is {max_duration_s:g} s"
                )
            if block.size:
                # max/min propagate NaN and show infinities: one pass finds both and the peak
                hi, lo = float(np.max(block)), float(np.min(block))
                if not (math.isfinite(hi) and math.isfinite(lo)):
                    raise BadAudioError(f"'{name}' contains invalid samples (NaN or infinity)")
                peak = max(peak, hi, -lo)
            sink.feed(block)
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return n, peak


def decode_into(
    path: str | os.PathLike,
    info: AudioInfo,
    open_sink: Callable[[], BlockSink],
    *,
    max_duration_s: float | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> Decoded:
    """Decode ``path`` block by block into a sink made by ``open_sink()``.

    soundfile decodes what it can; a file it cannot read (also one it fails on half-way) is
    decoded again from the start by ffmpeg into a fresh sink. Memory stays at a few blocks
    whatever the file's length: what the sink keeps is the sink's business. ``max_duration_s``
    is enforced on the samples themselves too (headers can understate the length).

    Returns:
        the sink that saw the whole file (finished and closed), the frames and the peak.

    Raises:
        BadAudioError: no samples (empty or truncated), NaN/inf samples, more than
            ``max_duration_s`` (+1 s of slack for headers that round) of audio.
    """
    path = Path(path)
    sink = open_sink()
    try:
        try:
            n, peak = _feed(
                _soundfile_blocks(path, block_frames),
                sink,
                path.name,
                info.sample_rate,
                max_duration_s,
            )
        except _SoundfileFailed:
            sink.close()
            sink = open_sink()
            n, peak = _feed(
                _ffmpeg_blocks(path, info, block_frames),
                sink,
                path.name,
                info.sample_rate,
                max_duration_s,
            )
        if n == 0:
            raise BadAudioError(f"'{path.name}' contains no audio samples (empty or truncated)")
        sink.finish()
    finally:
        sink.close()
    return Decoded(sink, n, peak)


class Reformat:
    """Channels and rate of ``[C, t]`` blocks: down-mix, resample, then up-mix.

    Down-mixing comes first (less to resample); mono → stereo duplicates after resampling,
    which is what resampling the whole file and then :func:`to_channels` gives.
    """

    def __init__(self, channels_in: int, sr_in: int, channels_out: int, sr_out: int) -> None:
        self.mid = min(channels_in, channels_out)
        self.channels_in, self.channels_out = channels_in, channels_out
        self.resampler = StreamResampler(sr_in, sr_out, self.mid)

    def _map(self, block: np.ndarray, last: bool) -> np.ndarray:
        if self.channels_in != self.mid:
            block = to_channels(block, self.mid)
        out = self.resampler.process(block, last=last)
        return to_channels(out, self.channels_out) if self.mid != self.channels_out else out

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._map(block, False)

    def flush(self) -> np.ndarray:
        return self._map(np.zeros((self.channels_in, 0), np.float32), True)


class _ArraySink:
    """Collects reformatted blocks in one preallocated ``[C, T]`` array, up to ``max_bytes``."""

    def __init__(
        self, name: str, info: AudioInfo, channels: int, sample_rate: int, max_bytes: int
    ) -> None:
        self.name, self.channels, self.sample_rate = name, channels, sample_rate
        self.reformat = Reformat(info.channels, info.sample_rate, channels, sample_rate)
        self.max_frames = max(max_bytes // (4 * channels), 1)
        self.max_bytes = max_bytes
        # The header's length plus a second of slack (pages never written cost no memory).
        estimate = decoded_bytes(info, sample_rate=sample_rate, channels=1) // 4 + sample_rate
        self.buf = np.empty((channels, min(max(estimate, sample_rate), self.max_frames)), "f4")
        self.n = 0

    def _append(self, block: np.ndarray) -> None:
        t = block.shape[1]
        end = self.n + t
        if end > self.max_frames:
            raise BadAudioError(
                f"'{self.name}' decodes to more than its header says ({self.channels} "
                f"channels at {self.sample_rate} Hz); the limit for a decoded file is "
                f"{_gib(self.max_bytes)}"
            )
        if end > self.buf.shape[1]:  # the header under-stated the length
            grown = np.empty(
                (self.channels, min(max(end, self.buf.shape[1] * 3 // 2), self.max_frames)), "f4"
            )
            grown[:, : self.n] = self.buf[:, : self.n]
            self.buf = grown
        self.buf[:, self.n : end] = block
        self.n = end

    def feed(self, block: np.ndarray) -> None:
        self._append(self.reformat.process(block))

    def finish(self) -> None:
        self._append(self.reformat.flush())

    def close(self) -> None:
        pass

    def result(self) -> np.ndarray:
        """The samples as a C-contiguous ``[C, n]`` array (moved in place, not copied)."""
        c, cap, n = self.channels, self.buf.shape[1], self.n
        if n == cap or c == 1:
            return self.buf[:, :n] if c == 1 else self.buf
        flat = self.buf.reshape(-1)
        step = BLOCK_FRAMES * 16
        for ch in range(1, c):
            for k in range(0, n, step):
                m = min(step, n - k)
                flat[ch * n + k : ch * n + k + m] = flat[ch * cap + k : ch * cap + k + m]
        return flat[: c * n].reshape(c, n)


def load_audio(
    path: str | os.PathLike,
    *,
    max_duration_s: float | None = None,
    max_sample_rate: int | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    max_bytes: int = MAX_DECODED_BYTES,
) -> tuple[np.ndarray, int]:
    """Decode a file to float32 ``[C, T]`` at its own sample rate (or ``sample_rate``).

    The file is read in blocks; ``channels`` and ``sample_rate`` (when given) are applied to
    each block as it arrives (down-mix by averaging, soxr VHQ, mono → stereo by copying), so
    memory holds the result and a few blocks, never the file at its own rate and layout. The
    result's size is checked against ``max_bytes`` from the header before anything is decoded,
    and again while decoding (headers can lie).

    Raises:
        BadAudioError: not audio, empty, no decodable samples (truncated header), NaN/inf
            samples, longer than ``max_duration_s``, a rate above ``max_sample_rate``, or a
            result larger than ``max_bytes``.
    """
    path = Path(path)
    info = probe(path)
    check_limits(path.name, info, max_duration_s=max_duration_s, max_sample_rate=max_sample_rate)
    out_sr = int(sample_rate or info.sample_rate)
    out_ch = int(channels or info.channels)
    size = decoded_bytes(info, sample_rate=out_sr, channels=out_ch)
    if size > max_bytes:
        raise BadAudioError(
            f"'{path.name}' would take {_gib(size)} decoded ({info.duration_s:.0f} s, "
            f"{out_ch} channels at {out_sr} Hz); the limit for a decoded file is "
            f"{_gib(max_bytes)}"
        )
    decoded = decode_into(
        path,
        info,
        lambda: _ArraySink(path.name, info, out_ch, out_sr, max_bytes),
        max_duration_s=max_duration_s,
    )
    assert isinstance(decoded.sink, _ArraySink)
    return decoded.sink.result(), out_sr


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
