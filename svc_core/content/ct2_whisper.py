"""Whisper PPG through CTranslate2 (a faster-whisper model folder), when ``ctranslate2`` is present.

A CTranslate2 Whisper folder (``model.bin`` + ``config.json`` [+ ``preprocessor_config.json``])
runs the same encoder as the official checkpoint, faster on CPU (and in int8). ``ctranslate2``
is an optional (bench) dependency: without it this backend raises a clear error.

CTranslate2's encoder only accepts full 30-s inputs (3000 mel frames), so every window is
zero-padded to 30 s (OpenAI's convention; ``full_window=True`` of the torch backend) and the
frames past the window's real length are dropped. Output: ``[ceil(T / 320), d_model]`` at
50 frames/s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from svc_core.content.base import (
    CONTENT_HOP,
    CONTENT_SR,
    ContentEncoder,
    cached_model,
    check_audio_16k,
    checkpoint_path,
    content_frames,
)
from svc_core.errors import BadInputError, IncompatibleError, StageNotAvailableError
from svc_core.progress import ProgressFn, StopFn, check_stop

CT2_CTX = 1500  # encoder frames per 30-s input
CT2_MEL_FRAMES = 3000


@dataclass(frozen=True)
class WhisperCT2Params:
    """Options of the CTranslate2 Whisper encoder.

    Attributes:
        checkpoint: the model folder (holds ``model.bin``).
        device: ``cpu``, ``cuda`` or ``auto``.
        compute_type: CTranslate2 compute type (``default``, ``float32``, ``int8``, ``float16``).
        window_s: window length (≤ 30 s, multiple of 0.02 s).
        threads: CPU threads (0 = CTranslate2's default).
    """

    checkpoint: str
    device: str = "cpu"
    compute_type: str = "default"
    window_s: float = 30.0
    threads: int = 0


def _import_ct2():
    try:
        import ctranslate2
    except ImportError:
        raise StageNotAvailableError(
            "The CTranslate2 Whisper backend needs the 'ctranslate2' package, which is not "
            "installed. Install svc-studio's 'bench' extra, or use an official Whisper .pt "
            "checkpoint with the 'whisper' backend."
        ) from None
    return ctranslate2


def _n_mels(folder) -> int:
    """Mel bands from ``preprocessor_config.json`` (large-v3: 128); Whisper's 80 otherwise."""
    cfg = folder / "preprocessor_config.json"
    if cfg.is_file():
        try:
            return int(json.loads(cfg.read_text())["feature_size"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IncompatibleError(f"{cfg} has no valid 'feature_size'.") from exc
    return 80


class WhisperCT2PPG(ContentEncoder):
    """Whisper encoder features via CTranslate2: ``[ceil(T / 320), d_model]`` at 50 frames/s."""

    name = "whisper-ct2"
    params_cls = WhisperCT2Params

    def __init__(self, params: WhisperCT2Params):
        from svc_core.content.whisper import window_samples

        ct2 = _import_ct2()
        self.params = params
        folder = checkpoint_path(params.checkpoint, folder=True)
        if not (folder / "model.bin").is_file():
            raise IncompatibleError(
                f"{folder} is not a CTranslate2 model folder (it has no model.bin)."
            )
        device = params.device
        if device == "auto":
            device = "cuda" if ct2.get_cuda_device_count() > 0 else "cpu"
        self.device = device
        self.n_mels = _n_mels(folder)

        def load():
            try:
                return ct2.models.Whisper(
                    str(folder),
                    device=device,
                    compute_type=params.compute_type,
                    intra_threads=params.threads,
                )
            except (RuntimeError, ValueError) as exc:
                raise IncompatibleError(
                    f"{folder}: CTranslate2 cannot load this Whisper model: {exc}"
                ) from exc

        self.model = cached_model(
            ("whisper-ct2", device, params.compute_type, params.threads), folder / "model.bin", load
        )
        self.window = window_samples(params.window_s, CT2_CTX)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            # The width is not exposed by the API: encode one short silent window to learn it.
            self._dim = int(self.encode(np.zeros(CONTENT_HOP, dtype=np.float32)).shape[1])
        return self._dim

    def encode(
        self,
        audio_16k: np.ndarray,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        import torch

        from svc_core.content.whisper import log_mel_spectrogram, split_windows

        ct2 = _import_ct2()
        audio = check_audio_16k(audio_16k)
        total = content_frames(audio.shape[0])
        audio = np.pad(audio, (0, total * CONTENT_HOP - audio.shape[0]))
        spans = split_windows(audio.shape[0], self.window)
        out: list[np.ndarray] = []
        for n, (s, e) in enumerate(spans):
            check_stop(should_stop)
            chunk = np.pad(audio[s:e], (0, 30 * CONTENT_SR - (e - s)))
            mel = log_mel_spectrogram(torch.from_numpy(chunk), self.n_mels)[:, :CT2_MEL_FRAMES]
            view = ct2.StorageView.from_array(np.ascontiguousarray(mel.numpy()[None]))
            feats = np.asarray(self.model.encode(view, to_cpu=True), dtype=np.float32)[0]
            if feats.shape[0] != CT2_CTX:
                raise IncompatibleError(
                    f"The CTranslate2 encoder returned {feats.shape[0]} frames, expected {CT2_CTX}."
                )
            out.append(feats[: (e - s) // CONTENT_HOP])
            if progress is not None:
                progress("content", (n + 1) / len(spans))
        if not out:
            raise BadInputError("No audio to encode.")
        features = np.concatenate(out, axis=0)
        assert features.shape[0] == total, (features.shape, total)
        return features
