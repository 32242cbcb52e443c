"""WORLD F0 estimators (pyworld): Harvest and DIO, each refined by StoneMask.

Both run on 16 kHz audio: F0 up to 1.1 kHz needs no more bandwidth, and it keeps Harvest's
cost independent of the input rate. They decide voicing themselves (unvoiced = 0), so
``F0Params.voicing_threshold`` does not apply.
"""

from __future__ import annotations

import numpy as np

from svc_core.audio.dsp import resample
from svc_core.f0.base import F0Extractor, F0Params

WORLD_SR = 16000


class _World(F0Extractor):
    def _estimate(self, x: np.ndarray, p: F0Params) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        import pyworld

        x = resample(audio, sr, WORLD_SR).astype(np.float64)
        f0, t = self._estimate(x, params)
        # StoneMask refines each voiced frame's F0 from the instantaneous frequency.
        f0 = pyworld.stonemask(x, f0, t, WORLD_SR)
        return f0, 0.0, params.hop_s


class Harvest(_World):
    """Harvest: robust, slow (~0.16 s per second of audio on one CPU core)."""

    name = "harvest"

    def _estimate(self, x: np.ndarray, p: F0Params) -> tuple[np.ndarray, np.ndarray]:
        import pyworld

        return pyworld.harvest(
            x, WORLD_SR, f0_floor=p.f0_min, f0_ceil=p.f0_max, frame_period=p.hop_s * 1000
        )


class Dio(_World):
    """DIO: very fast, less robust (more voicing and octave errors than Harvest)."""

    name = "dio"

    def _estimate(self, x: np.ndarray, p: F0Params) -> tuple[np.ndarray, np.ndarray]:
        import pyworld

        return pyworld.dio(
            x, WORLD_SR, f0_floor=p.f0_min, f0_ceil=p.f0_max, frame_period=p.hop_s * 1000
        )
