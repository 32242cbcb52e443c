"""Ingest: decode any readable audio file to a 44.1 kHz float WAV and describe it.

The original file is never modified (the caller keeps it). The decoded copy keeps the
file's channel layout (mono stays mono, stereo stays stereo; more channels are down-mixed to
stereo) so that separation later sees what the user uploaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from svc_core.audio.dsp import loudness_lufs, peak_dbfs, resample, to_channels
from svc_core.audio.io import load_audio, probe, save_wav
from svc_core.errors import BadAudioError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import file_sha256

TARGET_SAMPLE_RATE = 44100


@dataclass(frozen=True)
class IngestParams:
    """Limits and target format of the ingest stage."""

    target_sr: int = TARGET_SAMPLE_RATE
    max_duration_s: float = 20 * 60.0
    min_duration_s: float = 1.0
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
            ``min_duration_s`` or longer than ``max_duration_s``.
        Cancelled: ``should_stop()`` returned True.
    """
    src = Path(src)
    name = display_name or src.name
    report = progress or (lambda _s, _f: None)
    try:
        info = probe(src)
        report("ingest", 0.05)
        audio, sr = load_audio(src, max_duration_s=params.max_duration_s)
    except BadAudioError as exc:
        raise BadAudioError(str(exc).replace(f"'{src.name}'", f"'{name}'")) from None
    check_stop(should_stop)
    report("ingest", 0.4)
    duration = audio.shape[1] / sr
    if duration < params.min_duration_s:
        raise BadAudioError(
            f"'{name}' is too short ({duration:.2f} s); at least {params.min_duration_s:g} s "
            "of audio is needed"
        )
    peak = peak_dbfs(audio)
    if peak < params.silence_threshold_dbfs:
        raise BadAudioError(
            f"'{name}' is silent (its loudest sample is {peak:.0f} dBFS); nothing to sing from"
        )
    out_channels = min(audio.shape[0], 2)
    audio = to_channels(audio, out_channels)
    loudness = loudness_lufs(audio, sr)
    audio = resample(audio, sr, params.target_sr)
    check_stop(should_stop)
    report("ingest", 0.8)
    # Resampling can overshoot by a fraction of a dB near full scale; float WAV keeps it,
    # later stages normalise anyway.
    if not np.isfinite(audio).all():  # pragma: no cover - soxr never produces NaN from finite
        raise BadAudioError(f"'{name}' could not be resampled")
    save_wav(out_wav, audio, params.target_sr, subtype="FLOAT")
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
        output_channels=out_channels,
    )
    report("ingest", 1.0)
    return result
