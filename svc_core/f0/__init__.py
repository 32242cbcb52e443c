"""F0 (pitch) extraction behind one interface, plus pitch units and accuracy metrics.

``extract_f0(audio, sr, F0Params(method=...))`` is the entry point; methods are imported on
first use (``crepe-full``/``crepe``, ``crepe-tiny``, ``fcpe``, ``harvest``, ``dio``, ``praat``,
``rmvpe``).
"""

from svc_core.f0.base import (
    F0Extractor,
    F0Params,
    available_methods,
    canonical_method,
    extract_f0,
    get_extractor,
    n_frames,
    recommended_method,
)
from svc_core.f0.pitch import (
    F0Accuracy,
    cents_error,
    f0_accuracy,
    hz_to_midi,
    hz_to_note_name,
    midi_to_hz,
    midi_to_note_name,
)

__all__ = [
    "F0Accuracy",
    "F0Extractor",
    "F0Params",
    "available_methods",
    "canonical_method",
    "cents_error",
    "extract_f0",
    "f0_accuracy",
    "get_extractor",
    "hz_to_midi",
    "hz_to_note_name",
    "midi_to_hz",
    "midi_to_note_name",
    "n_frames",
    "recommended_method",
]
