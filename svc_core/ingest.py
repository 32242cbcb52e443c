"""Ingest: decode any readable audio file to a 44.1 kHz float WAV and describe it.

The original file is never modified (the caller keeps it). The decoded copy keeps the
file's channel layout (mono stays mono, stereo stays stereo; more channels are down-mixed to
stereo) so that separation later sees what the user uploaded.

Limits come from the header before anything is decoded (sample rate, duration), and the file
is then streamed: each block is measured (peak, loudness), down-mixed, resampled and written
before the next is read, so memory does not grow with the file's length, rate or channels.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from svc_core.audio.dsp import LoudnessMeter, StreamResampler, to_channels
from svc_core.audio.io import AudioInfo, check_limits, decode_into, probe
from svc_core.errors import BadAudioError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import atomic_path, file_sha256

TARGET_SAMPLE_RATE = 44100


@dataclass(frozen=True)
class IngestParams:
    """Limits and target format of the ingest stage."""

    target_sr: int = TARGET_SAMPLE_RATE
    max_duration_s: float = 20 * 60.0
    min_duration_s: float = 1.0
    # Above this a file is refused before decoding (384 kHz "hi-res" uploads carry nothing a
    # voice model can use, and cost their rate in decoding time).
    max_sample_rate: int = 192_000
    # A file whose loudest sample is below this is treated as silence (−60 dBFS is below
    # the noise floor of any 16-bit recording of a voice).
    silence_threshold_dbfs: float = -60.0


@dataclass(frozen=True)
class IngestResult:
    """Metadata of an ingested file (stored on the track and its ``decoded`` artifact)."""

    sha256: str
    size_bytes: int
    format: str
    subtype: str
    sample_rate: int
    channels: int
    duration_s: float
    loudness_lufs: float
    peak_dbfs: float
    output_sample_rate: int
    output_channels: int

    def to_dict(self) -> dict:
        return asdict(self)


class _IngestSink:
    """Layout, loudness (at the file's rate), resampling and WAV writing, block by block."""

    def __init__(
        self,
        tmp: Path,
        info: AudioInfo,
        target_sr: int,
        report: ProgressFn,
        should_stop: StopFn | None,
    ) -> None:
        self.channels = min(info.channels, 2)
        self.meter = LoudnessMeter(info.sample_rate, self.channels)
        self.resampler = StreamResampler(info.sample_rate, target_sr, self.channels)
        self.frames = 0
        self.expected = max(info.frames, 1)
        self.report, self.should_stop = report, should_stop
        self.out = sf.SoundFile(
            str(tmp), "w", target_sr, self.channels, subtype="FLOAT", format="WAV"
        )

    def _write(self, block: np.ndarray) -> None:
        if block.shape[1]:
            self.out.write(np.ascontiguousarray(block.T))

    def feed(self, block: np.ndarray) -> None:
        check_stop(self.should_stop)
        self.frames += block.shape[1]
        mixed = to_channels(block, self.channels)
        self.meter.feed(mixed)
        self._write(self.resampler.process(mixed))
        self.report("ingest", 0.05 + 0.75 * min(self.frames / self.expected, 1.0))

    def finish(self) -> None:
        self._write(self.resampler.flush())
        check_stop(self.should_stop)

    def close(self) -> None:
        self.out.close()


def ingest_file(
    src: str | os.PathLike,
    out_wav: str | os.PathLike,
    params: IngestParams = IngestParams(),
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    display_name: str | None = None,
) -> IngestResult:
    """Decode ``src``, check it and write ``out_wav`` (float32 WAV at ``params.target_sr``).

    Args:
        src: any file soundfile or ffmpeg decodes (wav, flac, mp3, ogg, m4a, ...).
        out_wav: destination, written atomically.
        display_name: the name used in error messages (default: ``src``'s file name).

    Raises:
        BadAudioError: not audio, empty, truncated, NaN samples, all silent, shorter than
            ``min_duration_s``, longer than ``max_duration_s`` or a sample rate above
            ``max_sample_rate`` (both from the header, before decoding).
        Cancelled: ``should_stop()`` returned True.
    """
    src = Path(src)
    name = display_name or src.name
    last = [0.0]

    def report(stage: str, fraction: float) -> None:  # at most ~100 calls per file
        if progress is not None and (fraction >= last[0] + 0.01 or fraction >= 0.8):
            last[0] = fraction
            progress(stage, fraction)

    with atomic_path(out_wav) as tmp:
        try:
            info = probe(src)
            check_limits(
                src.name,
                info,
                max_duration_s=params.max_duration_s,
                max_sample_rate=params.max_sample_rate,
            )
            report("ingest", 0.05)
            decoded = decode_into(
                src,
                info,
                lambda: _IngestSink(tmp, info, params.target_sr, report, should_stop),
                max_duration_s=params.max_duration_s,
            )
        except BadAudioError as exc:
            raise BadAudioError(str(exc).replace(f"'{src.name}'", f"'{name}'")) from None
        sink = decoded.sink
        assert isinstance(sink, _IngestSink)
        sr = info.sample_rate
        duration = decoded.frames / sr
        if duration < params.min_duration_s:
            raise BadAudioError(
                f"'{name}' is too short ({duration:.2f} s); at least {params.min_duration_s:g} s "
                "of audio is needed"
            )
        peak = 20.0 * np.log10(max(decoded.peak, 1e-10))  # as peak_dbfs of the whole file
        if peak < params.silence_threshold_dbfs:
            raise BadAudioError(
                f"'{name}' is silent (its loudest sample is {peak:.0f} dBFS); nothing to sing from"
            )
        loudness = sink.meter.value()
        report("ingest", 0.8)
    result = IngestResult(
        sha256=file_sha256(src),
        size_bytes=src.stat().st_size,
        format=info.format,
        subtype=info.subtype,
        sample_rate=sr,
        channels=info.channels,
        duration_s=round(duration, 4),
        loudness_lufs=round(loudness, 2),
        peak_dbfs=round(peak, 2),
        output_sample_rate=params.target_sr,
        output_channels=sink.channels,
    )
    report("ingest", 1.0)
    return result
