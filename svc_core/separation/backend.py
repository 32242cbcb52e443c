"""The separator backend interface and its registry (implementations are imported lazily)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from svc_core.utils import LazyRegistry


@dataclass(frozen=True)
class BackendOptions:
    """Inference settings that are fixed when a model is loaded (part of the cache key).

    Attributes:
        segment_size: MDX-Net frames per model call (UVR's default 256; equal to the model's
            ``dim_t`` keeps onnxruntime, anything else converts the model to torch).
        overlap: MDX-Net window overlap 0..1 (more = smoother chunk seams, slower).
        batch_size: chunks per model call (memory vs speed; no effect on the result).
    """

    segment_size: int = 256
    overlap: float = 0.25
    batch_size: int = 1


class SeparatorBackend(ABC):
    """Runs one separation model over one stereo 44.1 kHz float WAV."""

    @abstractmethod
    def run(
        self,
        model_file: str,
        models_dir: Path,
        wav: Path,
        work_dir: Path,
        options: BackendOptions,
        on_chunk: Callable[[float | None], None] | None = None,
    ) -> dict[str, Path]:
        """Separate ``wav`` with ``model_file`` (a file name inside ``models_dir``).

        ``on_chunk(fraction)`` is called as the model works through the audio (0..1; None:
        a step without a known fraction); it may raise :class:`~svc_core.errors.Cancelled`,
        which ends the run between chunks.

        Returns:
            Stem name in lower case (``vocals``, ``instrumental``, ``no reverb``, ...) -> a
            44.1 kHz float WAV in ``work_dir`` with the same number of frames as ``wav``, at the
            input's scale (no per-stem normalisation).

        Raises:
            SvcError: the model cannot be loaded or run (message for end users).
            BadAudioError: the audio is unusable.
        """


BACKENDS: LazyRegistry[type[SeparatorBackend]] = LazyRegistry(
    {"audio-separator": "svc_core.separation.audio_separator_backend:AudioSeparatorBackend"},
    unknown="unknown separator backend",
)


def get_backend(name: str = "audio-separator") -> SeparatorBackend:
    """The process-wide instance of backend ``name`` (it caches loaded models)."""
    backend: SeparatorBackend = BACKENDS.instance(name)
    return backend
