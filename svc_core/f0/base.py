"""F0 extraction: parameters, the extractor base class, the registry and the shared post-processing.

Frame convention (every method): frame ``k`` describes time ``k * hop_s`` (the analysis
window is centred there); a signal of ``T`` samples at ``sr`` gets
``n_frames(T, sr, hop_s) = ceil(T / (sr * hop_s))`` frames, so frames cover ``[0, T / sr)``.
Output is float32 Hz, ``0`` for unvoiced frames.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from svc_core.audio.dsp import to_mono
from svc_core.errors import BadAudioError, BadInputError
from svc_core.progress import check_stop
from svc_core.utils import LazyRegistry, ModelCache

# name -> "module:Class"; modules are imported on first use (torch, pyworld, parselmouth are heavy).
_REGISTRY: LazyRegistry[type[F0Extractor]] = LazyRegistry(
    {
        "crepe-full": "svc_core.f0.crepe:CrepeFull",
        "crepe-tiny": "svc_core.f0.crepe:CrepeTiny",
        "fcpe": "svc_core.f0.fcpe:Fcpe",
        "harvest": "svc_core.f0.world:Harvest",
        "dio": "svc_core.f0.world:Dio",
        "praat": "svc_core.f0.praat:Praat",
        "rmvpe": "svc_core.f0.rmvpe:Rmvpe",
    },
    unknown="unknown F0 method",
    aliases={"crepe": "crepe-full"},
)


@dataclass(frozen=True)
class F0Params:
    """How to extract F0.

    Attributes:
        method: one of :func:`available_methods` (``crepe`` = ``crepe-full``).
        hop_s: frame step in seconds.
        f0_min: lowest F0 in Hz; estimates below it become unvoiced.
        f0_max: highest F0 in Hz; estimates above it become unvoiced.
        voicing_threshold: method-specific voicing decision (crepe: periodicity, default 0.1;
            rmvpe: salience, default 0.03; praat: voicing threshold, default 0.45; harvest and
            dio decide voicing themselves and ignore it). None = the method's default.
        median_filter: median filter length in frames applied within voiced runs (odd;
            1 = off). Removes single-frame octave blips.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available) for the
            neural methods.
        weights_path: weights file for methods that need one (rmvpe); the caller resolves
            it from the asset registry.
        silence_db: frames whose RMS (50 ms window) is below this many dBFS are unvoiced,
            whatever the method says (CREPE normalises every frame and Harvest is level
            independent: both find "pitch" in -80 dB noise). None = off.
    """

    method: str = "crepe-tiny"
    hop_s: float = 0.01
    f0_min: float = 50.0
    f0_max: float = 1100.0
    voicing_threshold: float | None = None
    median_filter: int = 3
    device: str = "auto"
    weights_path: str | None = None
    silence_db: float | None = -60.0

    def __post_init__(self) -> None:
        _REGISTRY.check(canonical_method(self.method))
        if not 0.001 <= self.hop_s <= 0.1:
            raise BadInputError(f"F0 hop must be 1-100 ms (got {self.hop_s * 1000:g} ms)")
        if not 0 < self.f0_min < self.f0_max:
            raise BadInputError(f"F0 range must satisfy 0 < f0_min < f0_max ({self})")
        if self.median_filter < 1 or self.median_filter % 2 == 0:
            raise BadInputError("median_filter must be an odd number of frames (1 = off)")

    def to_dict(self) -> dict:
        return asdict(self)


def canonical_method(method: str) -> str:
    return _REGISTRY.canonical(method.strip().lower())


def available_methods() -> list[str]:
    """Registered method names (rmvpe is listed; it needs its weights file at run time)."""
    return _REGISTRY.names()


def recommended_method(cuda: bool) -> str:
    """A default for new voices: crepe full on a GPU; FCPE on CPU (bench/data.md: 9x faster
    than crepe tiny at the same accuracy, with lower cents error and fewer false alarms;
    crepe full is ~3x slower than real time there)."""
    return "crepe-full" if cuda else "fcpe"


def n_frames(n_samples: int, sr: int, hop_s: float) -> int:
    """Frames for ``n_samples`` at ``sr``: ``ceil(n_samples / (sr * hop_s))``."""
    # The epsilon keeps exact multiples exact despite float hops (0.01 * 44100 > 441).
    return max(0, math.ceil(n_samples / (sr * hop_s) - 1e-9))


class F0Extractor(ABC):
    """One F0 method. Instances are cached per process (:func:`get_extractor`) and keep their
    loaded models (:meth:`_cached`), so each model is loaded once per worker."""

    name: str = ""

    def __init__(self) -> None:
        self._models: ModelCache[Hashable, Any] = ModelCache()

    def _cached(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The model for ``key`` (e.g. a device), loaded by ``load()`` on first use."""
        return self._models.get_or_load(key, load)

    @abstractmethod
    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        """Raw F0 of mono ``audio [T]``.

        Returns:
            ``(f0 [N'], t0_s, step_s)``: Hz (0 unvoiced) on the method's own grid, frame
            ``k`` at time ``t0_s + k * step_s``. :func:`extract_f0` maps it onto the
            requested grid (when the method can produce it directly, ``t0_s = 0`` and
            ``step_s = hop_s`` make that a no-op).
        """


def get_extractor(method: str) -> F0Extractor:
    """The process-wide instance of ``method`` (imported and built on first use)."""
    inst: F0Extractor = _REGISTRY.instance(canonical_method(method))
    return inst


def _to_grid(f0: np.ndarray, t0_s: float, step_s: float, n: int, hop_s: float) -> np.ndarray:
    """Resample an F0 curve onto ``n`` frames at ``hop_s``: log-linear between two voiced
    neighbours, nearest frame otherwise (so voicing edges stay sharp)."""
    f0 = np.asarray(f0, dtype=np.float64)
    if len(f0) == 0:
        return np.zeros(n)
    if abs(step_s - hop_s) < 1e-9 and abs(t0_s) < 1e-9:
        out = f0[:n]
        return np.pad(out, (0, n - len(out)), mode="edge") if len(out) < n else out
    pos = (np.arange(n) * hop_s - t0_s) / step_s
    pos = np.clip(pos, 0.0, len(f0) - 1.0)  # beyond the method's first/last frame: nearest
    lo = np.floor(pos).astype(np.int64)
    hi = np.clip(lo + 1, 0, len(f0) - 1)
    w = np.clip(pos - lo, 0.0, 1.0)
    a, b = f0[lo], f0[hi]
    both = (a > 0) & (b > 0)
    out = np.where(w < 0.5, a, b)
    out[both] = np.exp((1 - w[both]) * np.log(a[both]) + w[both] * np.log(b[both]))
    return out


def _in_segments(
    extractor: F0Extractor,
    mono: np.ndarray,
    sr: int,
    p: F0Params,
    n: int,
    progress: Callable[[float], None] | None,
    should_stop: Callable[[], bool] | None,
) -> np.ndarray:
    """The raw F0 of ``mono`` piece by piece on the global hop grid (see extract_f0)."""
    per = max(1, int(round(SEGMENT_S / p.hop_s)))
    starts = list(range(0, n, per))
    f0 = np.zeros(n)
    for i, k_lo in enumerate(starts):
        check_stop(should_stop)
        k_hi = min(n, k_lo + per)
        a = max(0, int(round((k_lo * p.hop_s - SEGMENT_CONTEXT_S) * sr)))
        b = min(len(mono), int(round((k_hi * p.hop_s + SEGMENT_CONTEXT_S) * sr)))
        raw, t0, step = extractor.compute(mono[a:b], sr, p)
        # the piece's times are relative to sample a: shift them onto frames k_lo..k_hi
        offset = a / sr + t0 - k_lo * p.hop_s
        f0[k_lo:k_hi] = _to_grid(np.nan_to_num(raw, nan=0.0), offset, step, k_hi - k_lo, p.hop_s)
        if progress is not None:
            progress((i + 1) / len(starts))
    return f0


def frame_rms_db(
    mono: np.ndarray, sr: int, n: int, hop_s: float, win_s: float = 0.05
) -> np.ndarray:
    """RMS level in dBFS of a ``win_s`` window centred on every frame time ``k * hop_s``."""
    half = max(1, int(round(win_s * sr / 2)))
    power = np.concatenate(([0.0], np.cumsum(np.square(mono, dtype=np.float64))))
    centre = np.round(np.arange(n) * hop_s * sr).astype(np.int64)
    lo = np.clip(centre - half, 0, len(mono))
    hi = np.clip(centre + half, 0, len(mono))
    # Zero padding outside the signal: divide by the full window length.
    mean = np.maximum(power[hi] - power[lo], 0.0) / (2 * half)
    return 10.0 * np.log10(np.maximum(mean, 1e-20))


def median_within_voiced(f0: np.ndarray, length: int) -> np.ndarray:
    """Median filter of ``length`` frames over voiced frames only (unvoiced ones are ignored
    in each window and stay 0)."""
    if length <= 1 or len(f0) == 0:
        return f0
    half = length // 2
    x = np.where(f0 > 0, f0, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(x, (half, half), constant_values=np.nan), length
    )
    voiced = f0 > 0
    out = f0.copy()
    # Voiced centre frames always have one finite value, so nanmedian never warns here.
    out[voiced] = np.nanmedian(windows[voiced], axis=1)
    return out


# Long audio whose caller follows progress is tracked in pieces of this length, each with
# this much context on both sides (every method's window is well under a second)
SEGMENT_S = 30.0
SEGMENT_CONTEXT_S = 1.0


def extract_f0(
    audio: np.ndarray,
    sr: int,
    params: F0Params | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """F0 of ``audio`` (``[C, T]`` or ``[T]``; channels averaged) on the hop grid.

    With ``progress`` or ``should_stop``, audio longer than two :data:`SEGMENT_S` is tracked
    in 30-s pieces (each with a second of context either side, kept only for its own frames):
    ``progress(fraction)`` after each, ``should_stop`` checked before each (raises
    Cancelled). A whole song no longer sits at "0 %" until its pitch is done.

    Returns:
        ``[n_frames(T, sr, hop_s)]`` float32 Hz, 0 for unvoiced frames.

    Raises:
        BadAudioError: empty or non-finite audio.
        AssetMissingError: the method needs a weights file that is not there (rmvpe).
    """
    p = params or F0Params()
    mono = to_mono(np.asarray(audio, dtype=np.float32))
    if mono.size == 0:
        raise BadAudioError("cannot extract F0 from empty audio")
    if not np.isfinite(mono).all():
        raise BadAudioError("cannot extract F0: the audio contains NaN or infinite samples")
    n = n_frames(len(mono), sr, p.hop_s)
    extractor = get_extractor(p.method)
    followed = progress is not None or should_stop is not None
    if not followed or len(mono) <= 2 * SEGMENT_S * sr:
        check_stop(should_stop)
        raw, t0, step = extractor.compute(mono, sr, p)
        f0 = _to_grid(np.nan_to_num(raw, nan=0.0), t0, step, n, p.hop_s)
        if progress is not None:
            progress(1.0)
    else:
        f0 = _in_segments(extractor, mono, sr, p, n, progress, should_stop)
    f0[(f0 < p.f0_min) | (f0 > p.f0_max)] = 0.0
    if p.silence_db is not None:
        f0[frame_rms_db(mono, sr, n, p.hop_s) < p.silence_db] = 0.0
    f0 = median_within_voiced(f0, p.median_filter)
    return f0.astype(np.float32)
