"""Map features at their own frame rates onto the model's frames (numpy only).

Model frame ``i`` covers samples ``[i * hop, (i + 1) * hop)``. For each model frame we take
the feature frame that contains the frame's start time. For 50 frames/s content features at
100 model frames/s that is so-vits-svc 5.0's ``np.repeat(ppg, 2, axis=0)``; for F0 at the
model's own rate it is the identity. Training (:mod:`svc_core.train.dataset`) and conversion
(:mod:`svc_core.model.inference`) both use :func:`align_to_frames`, so a voice hears at
conversion exactly the alignment it was trained on.
"""

from __future__ import annotations

import numpy as np


def frame_index(n_frames: int, hop: int, sample_rate: int, rate: float, n_avail: int) -> np.ndarray:
    """Index of the feature frame (at ``rate`` per second) that holds each model frame's start.

    Args:
        n_frames: model frames wanted.
        hop: model hop length in samples.
        sample_rate: model sample rate.
        rate: feature frames per second.
        n_avail: feature frames available (indices are clamped to the last one).

    Returns:
        ``[n_frames]`` int64 indices in ``0..n_avail - 1``.
    """
    if n_avail < 1:
        raise ValueError("no feature frames to align")
    t = np.arange(n_frames) * (hop / sample_rate)
    # the epsilon keeps exact multiples (t * rate == k) from flooring to k - 1
    return np.minimum(np.floor(t * rate + 1e-6).astype(np.int64), n_avail - 1)


def align_to_frames(
    x: np.ndarray, rate: float, n_frames: int, hop: int, sample_rate: int
) -> np.ndarray:
    """Resample feature frames ``x [N, ...]`` at ``rate``/s onto ``n_frames`` model frames.

    Returns:
        ``[n_frames, ...]`` (same dtype as ``x``).
    """
    x = np.asarray(x)
    return x[frame_index(n_frames, hop, sample_rate, rate, x.shape[0])]
