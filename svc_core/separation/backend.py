"""The separator backend interface and its registry (implementations are imported lazily)."""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


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
        self, model_file: str, models_dir: Path, wav: Path, work_dir: Path, options: BackendOptions
    ) -> dict[str, Path]:
        """Separate ``wav`` with ``model_file`` (a file name inside ``models_dir``).

        Returns:
            Stem name in lower case (``vocals``, ``instrumental``, ``no reverb``, ...) -> a
            44.1 kHz float WAV in ``work_dir`` with the same number of frames as ``wav``, at the
            input's scale (no per-stem normalisation).

        Raises:
            SvcError: the model cannot be loaded or run (message for end users).
            BadAudioError: the audio is unusable.
        """


BACKENDS: dict[str, str] = {
    "audio-separator": "svc_core.separation.audio_separator_backend:AudioSeparatorBackend",
}
_instances: dict[str, SeparatorBackend] = {}
_instances_lock = threading.Lock()


def get_backend(name: str = "audio-separator") -> SeparatorBackend:
    """The process-wide instance of backend ``name`` (it caches loaded models)."""
    if name not in BACKENDS:
        from svc_core.errors import BadInputError

        raise BadInputError(f"unknown separator backend '{name}'; known: {', '.join(BACKENDS)}")
    with _instances_lock:
        if name not in _instances:
            module_name, attr = BACKENDS[name].split(":")
            _instances[name] = getattr(importlib.import_module(module_name), attr)()
        return _instances[name]
