"""Small signal helpers on float32 ``[C, T]`` arrays: resampling, channels, levels.

Resampling is soxr (VHQ), loudness is pyloudnorm (ITU-R BS.1770-4). Nothing here is
hand-written DSP beyond channel mixing and dB arithmetic.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
import soxr

# pyloudnorm needs at least one 400 ms gating block.
_MIN_LOUDNESS_SECONDS = 0.4
SILENCE_LUFS = -120.0


def as_2d(audio: np.ndarray) -> np.ndarray:
    """``[T]`` → ``[1, T]``; ``[C, T]`` unchanged."""
    arr = np.asarray(audio, dtype=np.float32)
    return arr[None, :] if arr.ndim == 1 else arr


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[C, T]`` (or ``[T]``) from ``sr_in`` to ``sr_out`` with soxr VHQ."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        return soxr.resample(arr, sr_in, sr_out, quality="VHQ").astype(np.float32)
    out = soxr.resample(np.ascontiguousarray(arr.T), sr_in, sr_out, quality="VHQ")
    out = out.reshape(-1, arr.shape[0]) if out.ndim == 1 else out
    return np.ascontiguousarray(out.T, dtype=np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average channels: ``[C, T]`` → ``[T]``."""
    arr = np.asarray(audio, dtype=np.float32)
    return arr if arr.ndim == 1 else arr.mean(axis=0)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mono ↔ stereo; more than two channels are down-mixed to ``channels`` by averaging.

    A 5.1 file's singing is mostly in the centre channel: averaging all channels keeps it
    (at a lower level, which loudness normalisation later restores).
    """
    arr = as_2d(audio)
    c = arr.shape[0]
    if c == channels:
        return arr
    mono = arr.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0) if channels > 1 else mono


def peak_dbfs(audio: np.ndarray) -> float:
    """Sample peak in dBFS (−inf-safe: silence gives −200)."""
    peak = float(np.max(np.abs(audio))) if np.size(audio) else 0.0
    return 20.0 * np.log10(max(peak, 1e-10))


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level over all samples in dBFS (silence gives −200)."""
    if not np.size(audio):
        return -200.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-10))


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (BS.1770) of ``[C, T]``; ``SILENCE_LUFS`` for silence/very short."""
    arr = as_2d(audio)
    if arr.shape[1] < int(_MIN_LOUDNESS_SECONDS * sample_rate) + 1:
        # Too short for one gating block: fall back to the RMS level (close to LUFS for speech).
        return max(rms_dbfs(arr), SILENCE_LUFS)
    meter = pyloudnorm.Meter(sample_rate)
    value = float(meter.integrated_loudness(np.ascontiguousarray(arr.T, dtype=np.float64)))
    return value if np.isfinite(value) else SILENCE_LUFS


def gain_db(audio: np.ndarray, db: float) -> np.ndarray:
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (db / 20.0))).astype(
        np.float32
    )


def normalize_loudness(
    audio: np.ndarray, sample_rate: int, target_lufs: float, *, max_peak_dbfs: float = -1.0
) -> np.ndarray:
    """Scale to ``target_lufs``; the gain is reduced so the sample peak stays ≤ ``max_peak_dbfs``.

    Silence is returned unchanged.
    """
    current = loudness_lufs(audio, sample_rate)
    if current <= SILENCE_LUFS + 1:
        return np.asarray(audio, dtype=np.float32)
    gain = target_lufs - current
    headroom = max_peak_dbfs - peak_dbfs(audio)
    return gain_db(audio, min(gain, headroom))
