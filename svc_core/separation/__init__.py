"""Vocal separation (audio-separator models behind a small backend interface).

Public API: :func:`separate`, :func:`use_stems`, :class:`SeparationParams`,
:class:`SeparationResult`, the model catalogue and :func:`clear_model_cache`.
"""

from __future__ import annotations

from svc_core.separation.backend import BackendOptions, SeparatorBackend, get_backend
from svc_core.separation.models import (
    BACKING_VOCALS_MODEL,
    CATALOGUE,
    DEFAULT_MODEL,
    DEREVERB_MODEL,
    QUALITY_MODEL,
    Role,
    SeparationModel,
    default_model,
)
from svc_core.separation.separate import (
    SAMPLE_RATE,
    SeparationParams,
    SeparationResult,
    separate,
    use_stems,
)


def clear_model_cache(backend: str = "audio-separator") -> None:
    """Unload every separation model this process loaded (the next job loads again)."""
    from svc_core.separation.backend import BACKENDS

    inst = BACKENDS.instances.get(backend)
    if inst is not None and hasattr(inst, "clear"):
        inst.clear()


__all__ = [
    "BACKING_VOCALS_MODEL",
    "CATALOGUE",
    "DEFAULT_MODEL",
    "DEREVERB_MODEL",
    "QUALITY_MODEL",
    "default_model",
    "SAMPLE_RATE",
    "BackendOptions",
    "Role",
    "SeparationModel",
    "SeparationParams",
    "SeparationResult",
    "SeparatorBackend",
    "clear_model_cache",
    "get_backend",
    "separate",
    "use_stems",
]
