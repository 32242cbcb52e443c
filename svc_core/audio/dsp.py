"""Small signal helpers on float32 ``[C, T]`` arrays: resampling, channels, levels.

Resampling is soxr (VHQ), loudness is pyloudnorm (ITU-R BS.1770-4). Nothing here is
hand-written DSP beyond channel mixing and dB arithmetic. :class:`StreamResampler` and
:class:`LoudnessMeter` do the same work block by block (for files too long to hold decoded):
their results equal :func:`resample` and :func:`loudness_lufs` on the whole signal, bit for bit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyloudnorm
import scipy.signal
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


class StreamResampler:
    """:func:`resample` over consecutive ``[C, t]`` blocks (soxr VHQ, one stream per file).

    The concatenated outputs of :meth:`process` and :meth:`flush` equal ``resample`` of the
    concatenated input exactly (soxr's streaming and one-shot paths share the filter state).
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int) -> None:
        self.channels = channels
        self._stream = (
            None
            if sr_in == sr_out
            else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="VHQ")
        )

    def process(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        arr = np.asarray(block, dtype=np.float32)
        if self._stream is None:
            return arr
        out = self._stream.resample_chunk(np.ascontiguousarray(arr.T), last=last)
        out = out.reshape(-1, self.channels) if out.ndim == 1 else out
        return np.ascontiguousarray(out.T, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """The filter's tail: call once after the last block."""
        return self.process(np.zeros((self.channels, 0), np.float32), last=True)


class LoudnessMeter:
    """:func:`loudness_lufs` of a signal fed as consecutive ``[C, t]`` blocks.

    Holds the K-weighting filter states and the last 400 ms of filtered samples, so memory does
    not grow with the length. Reproduces pyloudnorm's ``Meter.integrated_loudness`` step by step
    (same filters, same gating-block bounds, same sums), hence the same value.
    """

    _BLOCK_S = 0.400
    _OVERLAP = 0.75

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.rate = sample_rate
        self.channels = channels
        self._filters = list(pyloudnorm.Meter(sample_rate)._filters.values())
        self._zi = [
            [np.zeros(max(len(f.a), len(f.b)) - 1) for f in self._filters] for _ in range(channels)
        ]
        # Until a signal is long enough for one gating block, loudness_lufs uses the RMS level:
        # keep the raw samples of that short start.
        self._short_limit = int(_MIN_LOUDNESS_SECONDS * sample_rate) + 1
        self._head: list[np.ndarray] | None = []
        self._buf = np.zeros((channels, 0))  # filtered samples from frame self._off on
        self._off = 0
        self._total = 0
        self._next = 0  # next gating block to measure
        self._z: list[list[float]] = [[] for _ in range(channels)]

    def _bounds(self, j: int) -> tuple[int, int]:
        t_g, step = self._BLOCK_S, 1.0 - self._OVERLAP
        return int(t_g * (j * step) * self.rate), int(t_g * (j * step + 1) * self.rate)

    def _measure(self, j: int) -> None:
        lo, hi = self._bounds(j)
        seg = self._buf[:, max(lo - self._off, 0) : max(hi - self._off, 0)]
        for i in range(self.channels):
            self._z[i].append((1.0 / (self._BLOCK_S * self.rate)) * np.sum(np.square(seg[i])))

    def feed(self, block: np.ndarray) -> None:
        arr = as_2d(block)
        if arr.shape[1] == 0:
            return
        if self._head is not None:
            self._head.append(arr.copy())
            if self._total + arr.shape[1] >= self._short_limit:
                self._head = None
        filtered = np.empty(arr.shape)
        for ch in range(self.channels):
            x = arr[ch].astype(np.float64)
            for k, f in enumerate(self._filters):
                y, self._zi[ch][k] = scipy.signal.lfilter(f.b, f.a, x, zi=self._zi[ch][k])
                x = f.passband_gain * y
            filtered[ch] = x
        self._buf = np.concatenate([self._buf, filtered], axis=1)
        self._total += arr.shape[1]
        while self._bounds(self._next)[1] <= self._total:
            self._measure(self._next)
            self._next += 1
        keep_from = min(self._bounds(self._next)[0], self._total)
        if keep_from > self._off:
            self._buf = self._buf[:, keep_from - self._off :].copy()
            self._off = keep_from

    def value(self) -> float:
        """Integrated loudness of everything fed so far (as ``loudness_lufs`` of it)."""
        if self._total < self._short_limit:
            head = self._head or [np.zeros((self.channels, 0), np.float32)]
            return loudness_lufs(np.concatenate(head, axis=1), self.rate)
        t_g, step = self._BLOCK_S, 1.0 - self._OVERLAP
        n_blocks = int(np.round((self._total / self.rate - t_g) / (t_g * step))) + 1
        while self._next < n_blocks:  # the last blocks reach past the end: partial sums
            self._measure(self._next)
            self._next += 1
        z = np.array([zs[:n_blocks] for zs in self._z])
        value = _gated_loudness(z, self.channels, n_blocks)
        return value if np.isfinite(value) else SILENCE_LUFS


def _gated_loudness(z: np.ndarray, n_channels: int, n_blocks: int) -> float:
    """BS.1770 gating of the block mean squares ``z[channel, block]`` (pyloudnorm's code)."""
    g = [1.0, 1.0, 1.0, 1.41, 1.41]
    gamma_a = -70.0
    j_range = np.arange(0, n_blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        lj = [
            -0.691 + 10.0 * np.log10(np.sum([g[i] * z[i, j] for i in range(n_channels)]))
            for j in j_range
        ]
    j_g = [j for j, l_j in enumerate(lj) if l_j >= gamma_a]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        z_avg = [np.mean([z[i, j] for j in j_g]) for i in range(n_channels)]
    gamma_r = -0.691 + 10.0 * np.log10(np.sum([g[i] * z_avg[i] for i in range(n_channels)])) - 10.0
    j_g = [j for j, l_j in enumerate(lj) if (l_j > gamma_r and l_j > gamma_a)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        z_avg_gated = np.nan_to_num(
            np.array([np.mean([z[i, j] for j in j_g]) for i in range(n_channels)])
        )
    with np.errstate(divide="ignore"):
        return float(
            -0.691 + 10.0 * np.log10(np.sum([g[i] * z_avg_gated[i] for i in range(n_channels)]))
        )
