"""Praat's autocorrelation pitch tracker (parselmouth ``Sound.to_pitch_ac``)."""

from __future__ import annotations

import numpy as np

from svc_core.f0.base import F0Extractor, F0Params

DEFAULT_VOICING_THRESHOLD = 0.45  # Praat's own default


class Praat(F0Extractor):
    """Fast and accurate on clean monophonic voice; ``voicing_threshold`` is Praat's."""

    name = "praat"

    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        import parselmouth

        thr = params.voicing_threshold
        snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sr)
        pitch = snd.to_pitch_ac(
            time_step=params.hop_s,
            pitch_floor=params.f0_min,
            pitch_ceiling=params.f0_max,
            voicing_threshold=DEFAULT_VOICING_THRESHOLD if thr is None else thr,
        )
        f0 = np.nan_to_num(pitch.selected_array["frequency"], nan=0.0)
        if len(f0) == 0:  # shorter than Praat's analysis window (3 periods of f0_min)
            return np.zeros(1), 0.0, params.hop_s
        return f0, float(pitch.xs()[0]), float(pitch.time_step)
