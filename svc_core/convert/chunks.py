"""Long-input conversion in bounded memory: cut at silences, convert with context, crossfade.

so-vits-svc 5.0 converts fixed 25-s chunks and throws the context away, which leaves audible
breaks at chunk edges. Here a cut is placed at the quietest 20-ms frame inside a search window
before the length limit (a breath or a rest, in singing), each chunk is converted with extra
context on both sides, and neighbouring chunks are joined with a raised-cosine crossfade
centred on the cut, whose two weights sum to one at every sample.

Written here rather than taken from a library: no audio library offers "split at the quietest
point and overlap-add converted chunks"; it is a few lines of numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import atomic_write


@dataclass(frozen=True)
class ChunkParams:
    max_chunk_s: float = 30.0  # memory bound: the longest piece converted at once
    search_s: float = 8.0  # look this far back from the limit for the quietest frame
    context_s: float = 0.5  # converted but discarded on each side (minus the crossfade)
    crossfade_s: float = 0.1
    frame_s: float = 0.02


@dataclass(frozen=True)
class Chunk:
    start: int  # kept region [start, end) in samples
    end: int
    ctx_start: int  # converted region [ctx_start, ctx_end)
    ctx_end: int


def _frame_energy(mono: np.ndarray, frame: int) -> np.ndarray:
    n = len(mono) // frame
    if n == 0:
        return np.zeros(0)
    return np.square(mono[: n * frame].reshape(n, frame), dtype=np.float64).mean(axis=1)


def plan_chunks(mono: np.ndarray, sr: int, params: ChunkParams = ChunkParams()) -> list[Chunk]:
    """Split ``[T]`` audio into kept regions of at most ``max_chunk_s`` cut at quiet frames."""
    total = len(mono)
    limit = int(params.max_chunk_s * sr)
    frame = max(1, int(params.frame_s * sr))
    ctx = int(params.context_s * sr)
    energy = _frame_energy(mono, frame)
    cuts = [0]
    while total - cuts[-1] > limit:
        start = cuts[-1]
        lo_f = (start + max(limit - int(params.search_s * sr), limit // 2)) // frame
        hi_f = (start + limit) // frame
        window = energy[lo_f:hi_f]
        # the centre of the quietest frame; ties → the latest (longest chunk)
        best = lo_f + len(window) - 1 - int(np.argmin(window[::-1])) if len(window) else hi_f
        cut = min(best * frame + frame // 2, start + limit)
        cuts.append(max(cut, start + 1))
    cuts.append(total)
    return [
        Chunk(start=a, end=b, ctx_start=max(0, a - ctx), ctx_end=min(total, b + ctx))
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]


def _ramp_up(t: np.ndarray, cut: float, width: int) -> np.ndarray:
    """Raised-cosine step from 0 to 1 across ``[cut - width/2, cut + width/2]``.

    ``_ramp_up(t, c, w) + (1 - _ramp_up(t, c, w)) == 1``: the two chunks meeting at a cut
    always sum to unity gain.
    """
    x = np.clip((t - cut) / width + 0.5, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * x)).astype(np.float32)


def convert_in_chunks(
    mono: np.ndarray,
    sr: int,
    convert: Callable[[np.ndarray, int], np.ndarray],
    params: ChunkParams = ChunkParams(),
    *,
    out_sr: int | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    stage: str = "convert",
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """Run ``convert`` over long ``mono``.

    ``convert(piece, start)`` gets ``[T_in]`` samples at ``sr`` that begin at sample ``start``
    of ``mono`` (so it can look up time-aligned features) and returns
    ``[T_in * out_sr / sr]`` samples at ``out_sr``.

    ``convert`` may return a few samples more or fewer than the exact length (model hops);
    each piece is trimmed or zero-padded to it. The output has ``round(T * out_sr / sr)``
    samples.

    ``cache_dir``: converted pieces are kept there (``chunk_NNNN.npy``, written atomically) and
    reused, so a conversion interrupted after some chunks (a worker killed, a shutdown)
    continues with the next chunk. The caller names the folder after its inputs and
    parameters and removes it when done.
    """
    out_sr = out_sr or sr
    ratio = out_sr / sr
    chunks = plan_chunks(mono, sr, params)
    total_out = int(round(len(mono) * ratio))
    out = np.zeros(total_out, dtype=np.float32)
    # the crossfade must fit inside the context that both neighbours converted
    xf = max(2, int(min(params.crossfade_s, params.context_s) * out_sr))
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    for i, ch in enumerate(chunks):
        check_stop(should_stop)
        done = cache / f"chunk_{i:04d}.npy" if cache is not None else None
        if done is not None and done.exists():
            piece = np.load(done)
        else:
            piece = np.asarray(
                convert(mono[ch.ctx_start : ch.ctx_end], ch.ctx_start), dtype=np.float32
            )
            if done is not None:
                with atomic_write(done) as f:
                    np.save(f, piece)
        o0 = int(round(ch.ctx_start * ratio))
        o1 = min(total_out, int(round(ch.ctx_end * ratio)))
        piece = piece[: o1 - o0]
        if len(piece) < o1 - o0:
            piece = np.pad(piece, (0, o1 - o0 - len(piece)))
        t = np.arange(o0, o1, dtype=np.float64) + 0.5
        weight = np.ones(o1 - o0, dtype=np.float32)
        if i > 0:
            weight *= _ramp_up(t, ch.start * ratio, xf)
        if i < len(chunks) - 1:
            weight *= 1.0 - _ramp_up(t, ch.end * ratio, xf)
        out[o0:o1] += piece * weight
        if progress is not None:
            progress(stage, (i + 1) / len(chunks))
    return out
