"""FCPE (torchfcpe): a fast neural F0 estimator whose weights ship inside its PyPI wheel,
so it works offline. 16 kHz input, 10-ms frames (frame ``k`` at ``k * 0.01`` s)."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from svc_core.audio.dsp import resample
from svc_core.f0.base import F0Extractor, F0Params
from svc_core.utils import resolve_device

FCPE_SR = 16000
DEFAULT_THRESHOLD = 0.006  # torchfcpe's own voicing threshold


class Fcpe(F0Extractor):
    """FCPE (Fast Context-based Pitch Estimation, 10 M parameters), ``local_argmax`` decoder."""

    name = "fcpe"

    def _model(self, device: str):
        from torchfcpe import spawn_bundled_infer_model

        def load():
            # torchfcpe prints its loading notes to stdout; keep the worker's log clean
            with contextlib.redirect_stdout(io.StringIO()):
                return spawn_bundled_infer_model(device)

        return self._cached(device, load)

    def compute(
        self, audio: np.ndarray, sr: int, params: F0Params
    ) -> tuple[np.ndarray, float, float]:
        import torch

        device = resolve_device(params.device)
        model = self._model(device)
        x = torch.from_numpy(resample(audio, sr, FCPE_SR).astype(np.float32).copy())
        thr = DEFAULT_THRESHOLD if params.voicing_threshold is None else params.voicing_threshold
        with torch.inference_mode():
            f0 = model.infer(
                x[None, :, None].to(device),
                sr=FCPE_SR,
                decoder_mode="local_argmax",
                threshold=thr,
                f0_min=params.f0_min,
            )
        hop = model.get_hop_size()
        return f0[0, :, 0].float().cpu().numpy().astype(np.float64), 0.0, hop / FCPE_SR
