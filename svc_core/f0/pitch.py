"""Pitch units and F0 accuracy metrics: Hz ↔ MIDI, note names, cents errors.

Conventions: F0 arrays hold Hz with ``0`` for unvoiced frames. MIDI numbers are continuous
(A4 = 440 Hz = 69.0); unvoiced frames map to NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def hz_to_midi(f0: np.ndarray | float) -> np.ndarray:
    """Hz → continuous MIDI note number; ``0`` (unvoiced) and negatives → NaN."""
    f = np.asarray(f0, dtype=np.float64)
    out = np.full(f.shape, np.nan)
    voiced = f > 0
    out[voiced] = 69.0 + 12.0 * np.log2(f[voiced] / 440.0)
    return out


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    """MIDI note number → Hz (NaN stays NaN)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def midi_to_note_name(midi: float) -> str:
    """Nearest note name in scientific pitch notation: ``69 → "A4"``, ``60.4 → "C4"``."""
    if not np.isfinite(midi):
        raise ValueError("no note name for an unvoiced frame (NaN)")
    n = int(np.round(midi))
    return f"{NOTE_NAMES[n % 12]}{n // 12 - 1}"


def hz_to_note_name(hz: float) -> str:
    """Nearest note name of a frequency: ``440 → "A4"``."""
    return midi_to_note_name(float(hz_to_midi(hz)))


def cents_error(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``1200 * log2(estimate / reference)`` per frame; NaN where either is unvoiced.

    Both arrays are F0 in Hz on the same frame grid; the shorter length is used.
    """
    n = min(len(estimate), len(reference))
    est = np.asarray(estimate[:n], dtype=np.float64)
    ref = np.asarray(reference[:n], dtype=np.float64)
    out = np.full(n, np.nan)
    ok = (est > 0) & (ref > 0)
    out[ok] = 1200.0 * np.log2(est[ok] / ref[ok])
    return out


@dataclass(frozen=True)
class F0Accuracy:
    """How an estimated F0 curve compares with a reference (MIREX-style melody metrics).

    Attributes:
        raw_pitch_accuracy: share of reference-voiced frames whose estimate is voiced and
            within ``tolerance_cents`` of the reference.
        octave_errors: share of reference-voiced frames estimated voiced but off by a whole
            number (≠ 0) of octaves (within ``tolerance_cents`` of it).
        voicing_recall: share of reference-voiced frames estimated voiced.
        voicing_false_alarm: share of reference-unvoiced frames estimated voiced.
        mean_abs_cents: mean |error| over frames voiced in both, octave errors excluded.
        voiced_frames: number of reference-voiced frames compared.
    """

    raw_pitch_accuracy: float
    octave_errors: float
    voicing_recall: float
    voicing_false_alarm: float
    mean_abs_cents: float
    voiced_frames: int
    tolerance_cents: float

    def to_dict(self) -> dict:
        return asdict(self)


def f0_accuracy(
    estimate: np.ndarray, reference: np.ndarray, *, tolerance_cents: float = 50.0
) -> F0Accuracy:
    """Compare two F0 curves on the same frame grid (Hz, 0 = unvoiced)."""
    n = min(len(estimate), len(reference))
    est = np.asarray(estimate[:n], dtype=np.float64)
    ref = np.asarray(reference[:n], dtype=np.float64)
    ref_v, est_v = ref > 0, est > 0
    cents = cents_error(est, ref)
    both = ref_v & est_v
    n_ref = int(ref_v.sum())
    err = cents[both]
    octaves = np.round(err / 1200.0)
    within = np.abs(err) <= tolerance_cents
    octave = (octaves != 0) & (np.abs(err - 1200.0 * octaves) <= tolerance_cents)
    good = np.abs(err[octaves == 0])
    return F0Accuracy(
        raw_pitch_accuracy=float(within.sum() / n_ref) if n_ref else float("nan"),
        octave_errors=float(octave.sum() / n_ref) if n_ref else float("nan"),
        voicing_recall=float(both.sum() / n_ref) if n_ref else float("nan"),
        voicing_false_alarm=float((est_v & ~ref_v).sum() / max(int((~ref_v).sum()), 1)),
        mean_abs_cents=float(good.mean()) if good.size else float("nan"),
        voiced_frames=n_ref,
        tolerance_cents=tolerance_cents,
    )
