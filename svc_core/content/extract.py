"""The content stage: PPG and/or vec features of one piece of audio, models loaded once.

``ContentExtractor(params)`` loads the configured encoders once (through the per-process
cache) and can then encode any number of slices; :func:`extract_content` is the one-call form.
Both return ``{"ppg": [N, ppg_dim], "vec": [N, 256]}`` (only the configured keys), float32 at
50 frames/s with ``N = ceil(T16 / 320)`` where ``T16`` is the audio's length at 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svc_core.audio.dsp import resample, to_mono
from svc_core.content.base import CONTENT_SR, ContentEncoder, make_encoder
from svc_core.errors import BadAudioError, BadInputError
from svc_core.progress import ProgressFn, StopFn, check_stop, sub_progress

PPG_BACKENDS = ("whisper", "whisper-ct2")


@dataclass(frozen=True)
class ContentParams:
    """Which content features to compute, and how.

    Attributes:
        ppg_checkpoint: Whisper model (``.pt`` file, or a CTranslate2 folder with
            ``ppg_backend="whisper-ct2"``); ``None`` = no PPG.
        vec_checkpoint: HuBERT-soft ``.pt`` file; ``None`` = no vec.
        ppg_backend: ``whisper`` (official .pt) or ``whisper-ct2`` (CTranslate2 folder).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        precision: ``fp32`` or ``fp16`` (CUDA only) for the torch backends.
        whisper_window_s: Whisper window (≤ 30 s; long audio is windowed, never truncated).
        whisper_full_window: zero-pad every Whisper window to 30 s (as OpenAI, and as 5.0
            prepares its training clips: ``pad_or_trim``) instead of encoding it at its own
            length (5.0's inference script, in 15-s windows).
        whisper_sovits5_layers: leave out the encoder's last quarter of blocks, as 5.0.
        hubert_window_s: HuBERT-soft window; ``hubert_context_s`` of context on each side.
    """

    ppg_checkpoint: str | None = None
    vec_checkpoint: str | None = None
    ppg_backend: str = "whisper"
    device: str = "cpu"
    precision: str = "fp32"
    whisper_window_s: float = 30.0
    whisper_full_window: bool = True
    whisper_sovits5_layers: bool = True
    hubert_window_s: float = 20.0
    hubert_context_s: float = 1.0


class ContentExtractor:
    """Holds the configured encoders; :meth:`extract` encodes one audio array.

    Raises (on construction):
        BadInputError: neither feature configured, or an unknown backend.
        AssetMissingError / IncompatibleError: a checkpoint is missing or not of its format.
    """

    def __init__(self, params: ContentParams):
        if params.ppg_checkpoint is None and params.vec_checkpoint is None:
            raise BadInputError("Content extraction needs a PPG model, a vec model, or both.")
        if params.ppg_backend not in PPG_BACKENDS:
            raise BadInputError(
                f"Unknown PPG backend '{params.ppg_backend}': use {' or '.join(PPG_BACKENDS)}."
            )
        self.params = params
        self.encoders: dict[str, ContentEncoder] = {}
        if params.ppg_checkpoint is not None:
            options: dict = {"device": params.device, "window_s": params.whisper_window_s}
            if params.ppg_backend == "whisper":
                options.update(
                    precision=params.precision,
                    full_window=params.whisper_full_window,
                    sovits5_layers=params.whisper_sovits5_layers,
                )
            self.encoders["ppg"] = make_encoder(
                params.ppg_backend, params.ppg_checkpoint, **options
            )
        if params.vec_checkpoint is not None:
            self.encoders["vec"] = make_encoder(
                "hubert-soft",
                params.vec_checkpoint,
                device=params.device,
                precision=params.precision,
                window_s=params.hubert_window_s,
                context_s=params.hubert_context_s,
            )

    @property
    def dims(self) -> dict[str, int]:
        """Feature widths by key, e.g. ``{"ppg": 1280, "vec": 256}``."""
        return {k: e.dim for k, e in self.encoders.items()}

    def extract(
        self,
        audio: np.ndarray,
        sample_rate: int,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> dict[str, np.ndarray]:
        """Content features of ``audio``.

        Args:
            audio: ``[T]`` or ``[C, T]`` float audio at ``sample_rate`` (channels are averaged).
            sample_rate: its rate; resampled to 16 kHz (soxr VHQ) when different.
            progress: ``progress("content", fraction)`` over all encoders.
            should_stop: cancellation hook.

        Returns:
            ``{"ppg": float32 [N, ppg_dim], "vec": float32 [N, 256]}`` (configured keys only),
            ``N = ceil(T16 / 320)``.
        """
        if sample_rate <= 0:
            raise BadAudioError(f"Invalid sample rate {sample_rate}.")
        mono = to_mono(np.asarray(audio, dtype=np.float32))
        audio_16k = resample(mono, sample_rate, CONTENT_SR)
        out: dict[str, np.ndarray] = {}
        n = len(self.encoders)
        for i, (key, encoder) in enumerate(self.encoders.items()):
            check_stop(should_stop)
            sub = sub_progress(progress, "content", i / n, (i + 1) / n)
            out[key] = encoder.encode(audio_16k, progress=sub, should_stop=should_stop)
        return out


def extract_content(
    audio: np.ndarray,
    sr: int,
    params: ContentParams,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> dict[str, np.ndarray]:
    """One-call form of :class:`ContentExtractor` (models still come from the process cache)."""
    return ContentExtractor(params).extract(audio, sr, progress, should_stop)
