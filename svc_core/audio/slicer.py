"""Slicing vocals at silences: the openvpi Audio Slicer algorithm (vectorised) + a max-length split.

The algorithm (openvpi/audio-slicer ``slicer2.py``, re-implemented here rather than depended
upon: the PyPI ``audio-slicer`` package installs a top-level package named ``src``):

1. RMS of the mono mix in windows of ``min(min_interval, 4 * hop)`` samples, every ``hop``
   samples, centred (zero padding of half a window at both ends), so frame ``i`` describes
   the audio around sample ``i * hop``. A frame is *silent* when its RMS is below
   ``threshold`` (dBFS).
2. Every run of silent frames that ends at a non-silent frame ``i`` and started at frame ``s``
   is a candidate cut. It is cut when it is a leading silence longer than ``max_sil_kept``, or
   when it is at least ``min_interval`` long *and* the slice that it would close is at least
   ``min_length`` long (counted from the previous cut).
3. Where it cuts (``k = max_sil_kept`` in frames, "quietest" = the frame of lowest RMS, first
   one on ties):

   - silence ``≤ k``: one cut at the quietest frame of the silence (nothing removed);
   - ``k <`` silence ``≤ 2k``: at most ``k`` frames of silence are kept on each side; the
     removed span runs from the quietest frame of the first ``k`` frames (or of the middle
     overlap, whichever is earlier) to the quietest frame of the last ``k`` frames (or of the
     overlap, whichever is later);
   - silence ``> 2k``: the removed span runs from the quietest frame of the first ``k + 1``
     frames to the quietest frame of the last ``k + 1`` frames.

   A leading silence is removed up to its (right) cut; a trailing silence of at least
   ``min_interval`` is removed from the quietest frame of its first ``k + 1`` frames on.
4. Frame indices become sample positions ``frame * hop``.

Only the silent runs are visited in Python (a few per phrase), so a 5-minute vocal slices in
tens of milliseconds. On top of the original: slices longer than ``max_length_s`` are split at
their quietest frames into the fewest pieces (each at least ``min(min_length, max_length / 2)``),
slices with no frame above the threshold are dropped, and silence-only or too-short input is
a :class:`BadAudioError` instead of a silent "one chunk" answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from svc_core.audio.dsp import as_2d, peak_dbfs, rms_dbfs
from svc_core.audio.io import load_audio, save_wav
from svc_core.errors import BadAudioError, BadInputError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import write_atomic

MANIFEST_VERSION = 1
# Frames per block when computing the RMS curve: bounds memory to ~block * window floats.
_RMS_BLOCK_FRAMES = 4096


@dataclass(frozen=True)
class SliceParams:
    """Audio Slicer parameters (defaults = the openvpi GUI's defaults) plus the max-length split.

    Attributes:
        threshold_db: frames whose RMS is below this (dBFS) are silent.
        min_length_ms: a slice is at least this long before a silence may end it.
        min_interval_ms: shortest silence that may be cut out.
        hop_ms: analysis hop (RMS frame step); cut points are multiples of it.
        max_sil_kept_ms: longest silence kept at each side of a slice.
        max_length_s: slices longer than this are split at their quietest frame; 0 = off.
    """

    threshold_db: float = -40.0
    min_length_ms: int = 5000
    min_interval_ms: int = 300
    hop_ms: int = 10
    max_sil_kept_ms: int = 500
    max_length_s: float = 15.0

    def __post_init__(self) -> None:
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_ms > 0:
            raise BadInputError(
                "slicer parameters must satisfy min_length >= min_interval >= hop > 0 "
                f"(got {self.min_length_ms}, {self.min_interval_ms}, {self.hop_ms} ms)"
            )
        if self.max_sil_kept_ms < self.hop_ms:
            raise BadInputError(
                f"max_sil_kept ({self.max_sil_kept_ms} ms) must be at least hop ({self.hop_ms} ms)"
            )
        if self.max_length_s < 0:
            raise BadInputError("max_length_s must be 0 (off) or positive")
        if self.max_length_s and self.max_length_s * 1000 < 2 * self.hop_ms:
            raise BadInputError(f"max_length_s ({self.max_length_s} s) is shorter than two hops")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Slice:
    """A slice of the input: samples ``[start, end)``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class SliceInfo:
    """One written slice, as recorded in the manifest."""

    index: int
    path: str
    start: int
    end: int
    start_s: float
    end_s: float
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Frames:
    """The slicer's frame grid for one input (all counts in frames, except hop/win)."""

    hop: int
    win: int
    min_length: int
    min_interval: int
    max_sil_kept: int

    @classmethod
    def for_rate(cls, sr: int, p: SliceParams) -> _Frames:
        hop = round(sr * p.hop_ms / 1000)
        min_interval_samples = sr * p.min_interval_ms / 1000
        return cls(
            hop=hop,
            win=min(round(min_interval_samples), 4 * hop),
            min_length=round(sr * p.min_length_ms / 1000 / hop),
            min_interval=round(min_interval_samples / hop),
            max_sil_kept=round(sr * p.max_sil_kept_ms / 1000 / hop),
        )


def rms_frames(mono: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Centred frame RMS (librosa ``feature.rms`` with constant padding): ``[T]`` → ``[N]``.

    ``N = 1 + (T + 2 * (win // 2) - win) // hop``; frame ``i`` is centred on sample ``i * hop``.
    Digital silence gives exactly 0, so ties in "quietest frame" (first one wins) resolve the
    same way as in the reference implementation.
    """
    pad = win // 2
    y = np.pad(np.asarray(mono, dtype=np.float32), (pad, pad))
    n = 1 + (len(y) - win) // hop if len(y) >= win else 0
    if win % hop == 0 and n:
        # Common case (win = 4 hops): a frame's energy is the sum of win/hop whole hop blocks.
        k = win // hop
        blocks = y[: (n + k - 1) * hop].reshape(-1, hop).astype(np.float64)
        energy = np.einsum("ij,ij->i", blocks, blocks)
        csum = np.concatenate(([0.0], np.cumsum(energy)))
        # Differences of a running sum leave ~1e-12 residue in silence: re-zero frames whose
        # blocks are all exactly silent, so ties in "quietest frame" stay exact.
        silent = np.convolve(energy == 0.0, np.ones(k, dtype=np.int64), mode="valid") == k
        out = np.maximum(csum[k : n + k] - csum[:n], 0.0) / win
        out[silent[:n]] = 0.0
        return np.sqrt(out)
    out = np.empty(n, dtype=np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(y, win)[::hop][:n]
    for a in range(0, n, _RMS_BLOCK_FRAMES):
        block = frames[a : a + _RMS_BLOCK_FRAMES].astype(np.float64)
        out[a : a + _RMS_BLOCK_FRAMES] = np.einsum("ij,ij->i", block, block) / win
    return np.sqrt(out)


def _silent_runs(silent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) frame of every run of True in ``silent``."""
    edges = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _silence_tags(rms: np.ndarray, f: _Frames, threshold: float) -> list[tuple[int, int]]:
    """Frame spans ``(a, b)`` of silence to remove (``a == b``: a cut with nothing removed)."""
    total = len(rms)
    k = f.max_sil_kept
    tags: list[tuple[int, int]] = []
    clip_start = 0
    starts, ends = _silent_runs(rms < threshold)
    for s, i in zip(starts.tolist(), ends.tolist(), strict=True):
        if i == total:  # trailing silence: handled after the loop
            if total - s >= f.min_interval:
                stop = min(total, s + k)
                pos = int(rms[s : stop + 1].argmin()) + s
                tags.append((pos, total + 1))
            break
        leading_too_long = s == 0 and i > k
        long_enough = i - s >= f.min_interval and i - clip_start >= f.min_length
        if not leading_too_long and not long_enough:
            continue
        if i - s <= k:
            pos = int(rms[s : i + 1].argmin()) + s
            tags.append((0, pos) if s == 0 else (pos, pos))
            clip_start = pos
        elif i - s <= 2 * k:
            # The kept margins overlap: look for the quietest frame in the overlap too.
            pos = int(rms[i - k : s + k + 1].argmin()) + i - k
            pos_l = int(rms[s : s + k + 1].argmin()) + s
            pos_r = int(rms[i - k : i + 1].argmin()) + i - k
            if s == 0:
                tags.append((0, pos_r))
                clip_start = pos_r
            else:
                tags.append((min(pos_l, pos), max(pos_r, pos)))
                clip_start = max(pos_r, pos)
        else:
            pos_l = int(rms[s : s + k + 1].argmin()) + s
            pos_r = int(rms[i - k : i + 1].argmin()) + i - k
            tags.append((0, pos_r) if s == 0 else (pos_l, pos_r))
            clip_start = pos_r
    return tags


def _split_long(
    start: int, end: int, rms: np.ndarray, hop: int, max_len: int, min_piece: int
) -> list[Slice]:
    """Split ``[start, end)`` (samples) into the fewest pieces of at most ``max_len``, cutting
    each time at the quietest frame of the range that still allows that.

    Pieces are at least ``min_piece`` long. Between frames of equal level the one nearest an
    even split wins, so a sustained note is cut into equal parts, not a sliver and a rest.
    """
    out: list[Slice] = []
    while end - start > max_len:
        pieces = -(-(end - start) // max_len)
        lo = max(start + min_piece, end - (pieces - 1) * max_len)
        hi = min(start + max_len, end - min_piece)
        lo_f, hi_f = -(-lo // hop), min(hi // hop, len(rms) - 1)
        if hi_f < lo_f:  # range narrower than a hop: cut on the sample grid instead
            cut = max(lo, min(hi, start + (end - start) // pieces))
        else:
            frames = np.arange(lo_f, hi_f + 1)
            ideal = (start + (end - start) / pieces) / hop
            # A 10 % level penalty at the far end of the range: a real dip always wins.
            score = rms[frames] * (1.0 + 0.1 * np.abs(frames - ideal) / max(hi_f - lo_f, 1))
            cut = int(frames[int(score.argmin())]) * hop
        out.append(Slice(start, cut))
        start = cut
    out.append(Slice(start, end))
    return out


def slice_audio(audio: np.ndarray, sr: int, params: SliceParams | None = None) -> list[Slice]:
    """Find the slices of ``audio``.

    Args:
        audio: ``[C, T]`` or ``[T]`` float audio (channels are averaged for the analysis).
        sr: sample rate in Hz.
        params: slicer parameters (defaults: the Audio Slicer GUI's).

    Returns:
        Slices in order, as sample spans ``[start, end)``; they do not overlap, and the
        samples between them (and before the first / after the last) are removed silence.

    Raises:
        BadAudioError: the input is shorter than ``min_length`` or has no frame above the
            threshold.
    """
    p = params or SliceParams()
    arr = as_2d(audio)
    n_samples = arr.shape[1]
    f = _Frames.for_rate(sr, p)
    duration = n_samples / sr
    if n_samples < f.min_length * f.hop or n_samples < f.win:
        raise BadAudioError(
            f"the audio is {duration:.1f} s long; slicing needs at least "
            f"{p.min_length_ms / 1000:g} s (min_length)"
        )
    mono = arr.mean(axis=0) if arr.shape[0] > 1 else arr[0]
    rms = rms_frames(mono, f.win, f.hop)
    threshold = 10.0 ** (p.threshold_db / 20.0)
    loud = rms >= threshold
    if not loud.any():
        raise BadAudioError(
            f"no singing found above {p.threshold_db:g} dB (the loudest part is at "
            f"{20 * np.log10(max(float(rms.max()), 1e-10)):.0f} dBFS RMS); the audio is silent or "
            "too quiet — lower the threshold if the vocals are very quiet"
        )
    tags = _silence_tags(rms, f, threshold)
    total = len(rms)
    spans: list[tuple[int, int]] = []
    if not tags:
        spans.append((0, total))
    else:
        if tags[0][0] > 0:
            spans.append((0, tags[0][0]))
        spans.extend((tags[j][1], tags[j + 1][0]) for j in range(len(tags) - 1))
        if tags[-1][1] < total:
            spans.append((tags[-1][1], total))

    cum_loud = np.concatenate(([0], np.cumsum(loud)))
    max_len = int(round(p.max_length_s * sr)) if p.max_length_s else 0
    min_piece = min(f.min_length * f.hop, max_len // 2)
    out: list[Slice] = []
    for a, b in spans:
        if b <= a or cum_loud[min(b, total)] == cum_loud[a]:
            continue  # empty, or nothing above the threshold: it is removed silence
        start, end = a * f.hop, min(n_samples, b * f.hop)
        if max_len and end - start > max_len:
            out.extend(_split_long(start, end, rms, f.hop, max_len, min_piece))
        else:
            out.append(Slice(start, end))
    return out


def manifest_path(out_dir: str | os.PathLike, src: str | os.PathLike) -> Path:
    """Where :func:`slice_file` writes the manifest of ``src``: ``<out_dir>/<stem>.slices.json``."""
    return Path(out_dir) / f"{Path(src).stem}.slices.json"


def slice_file(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: SliceParams | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> list[SliceInfo]:
    """Slice an audio file into ``<out_dir>/<stem>_<NNNN>.wav`` (float WAV, source rate/channels).

    The boundaries go to a JSON manifest (:func:`manifest_path`): format version, source name,
    sample rate, channels, total samples, parameters and one entry per slice (see
    :class:`SliceInfo`). Files are written atomically; the manifest last, so a manifest on
    disk means every slice it lists is complete.

    Raises:
        BadAudioError: unreadable, too short or silent input (see :func:`slice_audio`).
        Cancelled: ``should_stop()`` returned True.
    """
    p = params or SliceParams()
    src = Path(src)
    out = Path(out_dir)
    if progress:
        progress("slice", 0.0)
    audio, sr = load_audio(src)
    check_stop(should_stop)
    try:
        slices = slice_audio(audio, sr, p)
    except BadAudioError as exc:
        raise BadAudioError(f"'{src.name}': {exc}") from exc
    if progress:
        progress("slice", 0.2)
    out.mkdir(parents=True, exist_ok=True)
    infos: list[SliceInfo] = []
    for idx, s in enumerate(slices):
        check_stop(should_stop)
        chunk = audio[:, s.start : s.end]
        path = save_wav(out / f"{src.stem}_{idx:04d}.wav", chunk, sr)
        infos.append(
            SliceInfo(
                index=idx,
                path=path.name,
                start=s.start,
                end=s.end,
                start_s=s.start / sr,
                end_s=s.end / sr,
                duration_s=s.length / sr,
                peak_dbfs=round(peak_dbfs(chunk), 2),
                rms_dbfs=round(rms_dbfs(chunk), 2),
            )
        )
        if progress:
            progress("slice", 0.2 + 0.8 * (idx + 1) / len(slices))
    manifest = {
        "format_version": MANIFEST_VERSION,
        "source": src.name,
        "sample_rate": sr,
        "channels": int(audio.shape[0]),
        "total_samples": int(audio.shape[1]),
        "params": p.to_dict(),
        "slices": [i.to_dict() for i in infos],
    }
    write_atomic(manifest_path(out, src), json.dumps(manifest, indent=2))
    return infos


def read_manifest(path: str | os.PathLike) -> dict:
    """Load a slice manifest written by :func:`slice_file`; refuses unknown format versions."""
    from svc_core.errors import IncompatibleError

    data = json.loads(Path(path).read_text())
    if data.get("format_version") != MANIFEST_VERSION:
        raise IncompatibleError(
            f"slice manifest '{Path(path).name}' has format version "
            f"{data.get('format_version')!r}; this version reads {MANIFEST_VERSION}"
        )
    return data
