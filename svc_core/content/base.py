"""Content encoders: the base class, the backend registry and the per-process model cache.

Frame convention shared by every encoder (so later stages can map content onto the F0 hop):

* input: mono float32 audio at :data:`CONTENT_SR` (16 kHz), ``[T]`` samples;
* output: ``[N, dim]`` float32 with ``N = ceil(T / CONTENT_HOP)`` = ``ceil(T / 320)``,
  i.e. :data:`CONTENT_RATE` = 50 frames per second;
* frame ``i`` describes samples ``[320 * i, 320 * (i + 1))`` (the last frame's audio is
  zero-padded up to a whole hop).

Backends are imported lazily by name (``"whisper"``, ``"whisper-ct2"``, ``"hubert-soft"``) so
that importing this package never imports torch. Loaded models are cached per process, keyed
by (backend, resolved checkpoint path, file modification time, device, precision): a worker
that encodes many slices loads each model once.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from svc_core.errors import AssetMissingError, BadAudioError, BadInputError, IncompatibleError
from svc_core.progress import ProgressFn, StopFn
from svc_core.utils import LazyRegistry, ModelCache

CONTENT_SR = 16000
CONTENT_HOP = 320
CONTENT_RATE = CONTENT_SR / CONTENT_HOP  # 50.0 frames per second

# backend name -> "module:Class" (imported on first use)
ENCODERS: LazyRegistry[type[ContentEncoder]] = LazyRegistry(
    {
        "whisper": "svc_core.content.whisper:WhisperPPG",
        "whisper-ct2": "svc_core.content.ct2_whisper:WhisperCT2PPG",
        "hubert-soft": "svc_core.content.hubert:HubertSoftVec",
    },
    unknown="Unknown content encoder",
)


def content_frames(num_samples: int) -> int:
    """Number of content frames for ``num_samples`` of 16 kHz audio: ``ceil(T / 320)``."""
    return math.ceil(num_samples / CONTENT_HOP)


def check_audio_16k(audio: np.ndarray) -> np.ndarray:
    """Validate encoder input: 1-D, non-empty, finite. Returns float32 ``[T]``.

    Raises:
        BadAudioError: the array is not mono audio or holds NaN/inf.
    """
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise BadAudioError(
            "The content encoder needs mono audio (one channel); "
            f"got an array of shape {arr.shape}."
        )
    if arr.size == 0:
        raise BadAudioError("The audio is empty: there is nothing to encode.")
    if not np.all(np.isfinite(arr)):
        raise BadAudioError("The audio contains invalid samples (NaN or infinity).")
    return arr


def checkpoint_path(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Resolve a checkpoint path and check that it exists.

    Raises:
        AssetMissingError: nothing at ``path`` (the message says how to fetch assets).
        BadInputError: a folder where a file is expected, or the reverse.
    """
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise AssetMissingError(
            f"The content encoder model {p} does not exist. Fetch pretrained models with "
            "'svc-studio assets pull NAME' (for example whisper-large-v2 or hubert-soft), "
            "or pass the path of a downloaded checkpoint."
        )
    if folder and not p.is_dir():
        raise BadInputError(f"{p} must be a model folder, not a file.")
    if not folder and not p.is_file():
        raise BadInputError(f"{p} must be a checkpoint file, not a folder.")
    return p


class ContentEncoder(ABC):
    """A speech-content encoder: 16 kHz mono audio in, ``[N, dim]`` features at 50 frames/s out.

    Subclasses set :attr:`name` and :attr:`params_cls` and implement :meth:`dim` and
    :meth:`encode`. Construction loads (or fetches from the cache) the model.
    """

    name: ClassVar[str]
    params_cls: ClassVar[type]
    sample_rate: ClassVar[int] = CONTENT_SR
    hop_length: ClassVar[int] = CONTENT_HOP
    frame_rate: ClassVar[float] = CONTENT_RATE

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature width (whisper: the model's ``n_audio_state``; HuBERT-soft: 256)."""

    @abstractmethod
    def encode(
        self,
        audio_16k: np.ndarray,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        """Encode mono 16 kHz audio.

        Args:
            audio_16k: float32 ``[T]`` at 16 kHz.
            progress: optional ``progress("content", fraction)`` hook (per window).
            should_stop: optional cancellation hook, checked between windows.

        Returns:
            float32 ``[ceil(T / 320), dim]``.
        """


def get_encoder_class(name: str) -> type[ContentEncoder]:
    """The encoder class registered under ``name`` (imported on first use).

    Raises:
        BadInputError: unknown backend name.
    """
    return ENCODERS.load(name)


def make_encoder(name: str, checkpoint: str | os.PathLike[str], **options: Any) -> ContentEncoder:
    """Build the encoder ``name`` on ``checkpoint`` with backend ``options`` (its params fields).

    Example: ``make_encoder("whisper", "models/large-v2.pt", device="cuda")``.
    """
    cls = get_encoder_class(name)
    params = cls.params_cls(checkpoint=str(checkpoint), **options)
    return cls(params)


def _torch_load(path) -> Any:
    import torch

    """Load a torch file tensors-only (no pickled code); mmap avoids reading unused weights."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):  # legacy (non-zip) files cannot be memory-mapped
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def load_torch_checkpoint(path, what: str) -> Any:
    """``torch.load`` with a plain error for files that are not PyTorch checkpoints."""
    try:
        return _torch_load(path)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise IncompatibleError(
            f"{path} is not a readable PyTorch checkpoint, so it cannot be used as {what} "
            f"({type(exc).__name__})."
        ) from exc


def precision_dtype(precision: str, device: str) -> Any:
    """``fp32``/``fp16`` → torch dtype; fp16 only on CUDA."""
    import torch

    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        if not device.startswith("cuda"):
            raise BadInputError("fp16 content encoding needs a CUDA GPU; use fp32 on the CPU.")
        return torch.float16
    raise BadInputError(f"Unknown precision '{precision}': use fp32 or fp16.")


def load_error_detail(exc: Exception) -> str:
    """The informative line of a ``load_state_dict`` error (its first line is generic)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
    return detail if len(detail) <= 300 else detail[:297] + "..."


# --- per-process model cache -------------------------------------------------------------

_CACHE: ModelCache[tuple, Any] = ModelCache()


def cached_model(key_parts: tuple, path: Path, loader: Callable[[], Any]) -> Any:
    """Return the model for ``key_parts`` + ``path`` (+ its mtime), loading it once per process.

    The modification time is part of the key so that a re-downloaded or replaced checkpoint
    at the same path is loaded again instead of silently reusing the old weights.
    """
    return _CACHE.get_or_load((*key_parts, str(path), path.stat().st_mtime_ns), loader)


def clear_model_cache() -> None:
    """Drop every cached content model (frees memory; the next use loads again)."""
    _CACHE.clear()


def cache_size() -> int:
    """Number of models held in the per-process cache."""
    return len(_CACHE)
