"""The data-coverage report of a voice's training slices, and how well a song fits that voice.

Answers the two questions users of so-vits-svc ask most: "is my data enough?" (singing time,
pitch histogram and range, loudness consistency, plain warnings) and "why does this high note
choke?" (share of a song's singing outside the voice's range, and the transpose that brings
most of it inside). Inputs are F0 curves (Hz per hop, 0 = unvoiced) from :mod:`svc_core.f0`.
Everything returned is a frozen dataclass with ``to_dict()`` (JSON-able) for the API and UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from svc_core.f0.pitch import hz_to_midi, midi_to_hz, midi_to_note_name

# The common advice for so-vits-svc / RVC training data (see DESIGN.md "Lessons").
MIN_MINUTES = 10.0
ADVICE = "15–30 minutes of clean singing is the usual advice"
NARROW_RANGE_SEMITONES = 7.0
LOW_VOICED_SHARE = 0.4
LOUDNESS_SPREAD_DB = 15.0
RANGE_PERCENTILES = (5.0, 95.0)


@dataclass(frozen=True)
class SliceStats:
    """What the report needs of one slice.

    Attributes:
        f0: ``[N]`` F0 in Hz per hop, 0 for unvoiced frames.
        duration_s: the slice's length in seconds.
        loudness_lufs: integrated loudness (``svc_core.audio.dsp.loudness_lufs``), if known.
        name: slice file name, used in warnings.
    """

    f0: np.ndarray
    duration_s: float
    loudness_lufs: float | None = None
    name: str = ""


@dataclass(frozen=True)
class PitchRange:
    """A pitch range: 5th-95th percentile ("low"/"high") and extremes, in notes, Hz and MIDI."""

    low_note: str
    high_note: str
    low_hz: float
    high_hz: float
    low_midi: float
    high_midi: float
    min_note: str
    max_note: str
    min_hz: float
    max_hz: float
    median_note: str
    median_hz: float

    @property
    def label(self) -> str:
        return f"{self.low_note}–{self.high_note}"

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


@dataclass(frozen=True)
class HistogramBin:
    """Voiced time at one semitone (frames whose pitch rounds to ``midi``)."""

    midi: int
    note: str
    seconds: float
    share: float


@dataclass(frozen=True)
class LoudnessStats:
    mean_lufs: float
    min_lufs: float
    max_lufs: float
    spread_db: float


@dataclass(frozen=True)
class CoverageReport:
    """Coverage of a voice's training data."""

    slice_count: int
    total_s: float
    voiced_s: float
    hop_s: float
    histogram: list[HistogramBin] = field(default_factory=list)
    range: PitchRange | None = None
    loudness: LoudnessStats | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def total_min(self) -> float:
        return self.total_s / 60.0

    def to_dict(self) -> dict:
        return {
            "slice_count": self.slice_count,
            "total_s": round(self.total_s, 3),
            "total_min": round(self.total_min, 2),
            "voiced_s": round(self.voiced_s, 3),
            "voiced_share": round(self.voiced_s / self.total_s, 4) if self.total_s else 0.0,
            "hop_s": self.hop_s,
            "histogram": [asdict(b) for b in self.histogram],
            "range": self.range.to_dict() if self.range else None,
            "loudness": asdict(self.loudness) if self.loudness else None,
            "warnings": list(self.warnings),
        }


def voiced_midi(f0: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Continuous MIDI numbers of the voiced frames of one curve or several (concatenated)."""
    if isinstance(f0, np.ndarray) and f0.ndim == 1:
        arr = f0
    else:
        parts = [np.asarray(a, dtype=np.float64).ravel() for a in f0]
        arr = np.concatenate(parts) if parts else np.zeros(0)
    arr = np.asarray(arr, dtype=np.float64)
    return hz_to_midi(arr[arr > 0])


def pitch_range(midi: np.ndarray) -> PitchRange | None:
    """The range of voiced MIDI values (None when there are none)."""
    if midi.size == 0:
        return None
    lo, hi = np.percentile(midi, RANGE_PERCENTILES)
    mn, mx, med = float(midi.min()), float(midi.max()), float(np.median(midi))
    return PitchRange(
        low_note=midi_to_note_name(lo),
        high_note=midi_to_note_name(hi),
        low_hz=round(float(midi_to_hz(lo)), 2),
        high_hz=round(float(midi_to_hz(hi)), 2),
        low_midi=round(float(lo), 3),
        high_midi=round(float(hi), 3),
        min_note=midi_to_note_name(mn),
        max_note=midi_to_note_name(mx),
        min_hz=round(float(midi_to_hz(mn)), 2),
        max_hz=round(float(midi_to_hz(mx)), 2),
        median_note=midi_to_note_name(med),
        median_hz=round(float(midi_to_hz(med)), 2),
    )


def pitch_histogram(midi: np.ndarray, hop_s: float) -> list[HistogramBin]:
    """Voiced time per semitone, lowest note first (only notes that occur)."""
    if midi.size == 0:
        return []
    notes, counts = np.unique(np.round(midi).astype(np.int64), return_counts=True)
    total = counts.sum()
    return [
        HistogramBin(
            midi=int(n),
            note=midi_to_note_name(n),
            seconds=round(float(c * hop_s), 3),
            share=round(float(c / total), 5),
        )
        for n, c in zip(notes, counts, strict=True)
    ]


# FCPE's bundled model finds no pitch from about 1.1-1.2 kHz up (bench/data.md: a 1.2 kHz
# tone is unvoiced to it; crepe and Harvest track it): a singer whose F0 under FCPE already
# reaches this high probably sings higher still
FCPE_CEILING_HZ = 1100.0
FCPE_WARN_FROM_HZ = 950.0


def coverage_report(
    slices: Sequence[SliceStats],
    *,
    hop_s: float = 0.01,
    min_minutes: float = MIN_MINUTES,
    f0_method: str | None = None,
) -> CoverageReport:
    """Build the coverage report of a voice's slices.

    Args:
        slices: per-slice F0 curves (same ``hop_s``), durations and loudness.
        hop_s: F0 frame step in seconds.
        min_minutes: below this much singing (total slice time), warn.
        f0_method: the method the F0 curves come from (its known limits are warned about).
    """
    total = float(sum(s.duration_s for s in slices))
    midi = voiced_midi([s.f0 for s in slices])
    voiced = midi.size * hop_s
    rng = pitch_range(midi)
    louds = [s.loudness_lufs for s in slices if s.loudness_lufs is not None]
    loud = None
    if louds:
        arr = np.asarray(louds, dtype=np.float64)
        loud = LoudnessStats(
            mean_lufs=round(float(arr.mean()), 2),
            min_lufs=round(float(arr.min()), 2),
            max_lufs=round(float(arr.max()), 2),
            spread_db=round(float(arr.max() - arr.min()), 2),
        )

    warnings: list[str] = []
    if not slices or midi.size == 0:
        warnings.append("no singing found in the slices: nothing to train on")
    if total / 60.0 < min_minutes:
        warnings.append(
            f"less than {min_minutes:g} minutes of singing (found {total / 60.0:.1f} min); {ADVICE}"
        )
    if total > 0 and midi.size and voiced / total < LOW_VOICED_SHARE:
        warnings.append(
            f"only {100 * voiced / total:.0f} % of the sliced audio has a pitch; the rest is "
            "silence, breath, noise or unpitched sound — check the vocal separation"
        )
    if rng is not None and rng.high_midi - rng.low_midi < NARROW_RANGE_SEMITONES:
        warnings.append(
            f"the singing covers a narrow range ({rng.label}, "
            f"{rng.high_midi - rng.low_midi:.0f} semitones); notes outside it may sound strained "
            "or jump an octave after conversion — add songs with lower and higher notes"
        )
    if f0_method == "fcpe" and rng is not None and rng.max_hz >= FCPE_WARN_FROM_HZ:
        warnings.append(
            f"the singing reaches {rng.max_hz:.0f} Hz, close to what FCPE can track (about "
            f"{FCPE_CEILING_HZ:.0f} Hz): higher notes would be taken as unvoiced — for a "
            "singer this high, train with crepe or harvest as the F0 method"
        )
    if loud is not None and loud.spread_db > LOUDNESS_SPREAD_DB:
        quietest = min((s for s in slices if s.loudness_lufs is not None), key=_lufs)
        warnings.append(
            f"slice loudness varies by {loud.spread_db:.0f} dB ({loud.min_lufs:.0f} to "
            f"{loud.max_lufs:.0f} LUFS; quietest: {quietest.name or 'unnamed'}); very quiet "
            "slices are often leftovers of the separation"
        )
    return CoverageReport(
        slice_count=len(slices),
        total_s=total,
        voiced_s=voiced,
        hop_s=hop_s,
        histogram=pitch_histogram(midi, hop_s),
        range=rng,
        loudness=loud,
        warnings=warnings,
    )


def _lufs(s: SliceStats) -> float:
    return float(s.loudness_lufs if s.loudness_lufs is not None else 0.0)


def _inside_counts(source: np.ndarray, lo: float, hi: float, shifts: np.ndarray) -> np.ndarray:
    """How many source MIDI values land in ``[lo, hi]`` after each shift."""
    src = np.sort(source)
    return np.searchsorted(src, hi - shifts, side="right") - np.searchsorted(
        src, lo - shifts, side="left"
    )


def suggest_transpose(
    source_f0: np.ndarray, reference_f0: np.ndarray | Sequence[np.ndarray], *, max_shift: int = 24
) -> int:
    """The shift in semitones that puts the most voiced source frames inside the reference's
    5th-95th percentile range; ties go to the smallest ``|shift|`` (then the downward one).

    Args:
        source_f0: ``[N]`` F0 of the song to convert (Hz, 0 unvoiced).
        reference_f0: the voice's F0 (one curve or several, e.g. per slice).
        max_shift: search ``-max_shift..+max_shift``.

    Returns:
        0 when either side has no voiced frames.
    """
    src = voiced_midi(source_f0)
    ref = voiced_midi(reference_f0)
    if src.size == 0 or ref.size == 0:
        return 0
    lo, hi = np.percentile(ref, RANGE_PERCENTILES)
    shifts = np.arange(-max_shift, max_shift + 1)
    counts = _inside_counts(src, lo, hi, shifts)
    best = min(range(len(shifts)), key=lambda i: (-counts[i], abs(shifts[i]), shifts[i]))
    return int(shifts[best])


@dataclass(frozen=True)
class SourceFit:
    """How a song's sung pitch fits a voice's range.

    ``outside_share``: share of the song's voiced frames outside the voice's 5-95 % range as
    it is; ``outside_share_after``: the same after ``suggested_transpose`` semitones.
    """

    outside_share: float
    suggested_transpose: int
    outside_share_after: float
    source_range: PitchRange | None
    reference_range: PitchRange | None
    message: str

    def to_dict(self) -> dict:
        return {
            "outside_share": round(self.outside_share, 4),
            "suggested_transpose": self.suggested_transpose,
            "outside_share_after": round(self.outside_share_after, 4),
            "source_range": self.source_range.to_dict() if self.source_range else None,
            "reference_range": self.reference_range.to_dict() if self.reference_range else None,
            "message": self.message,
        }


def source_fit(
    source_f0: np.ndarray, reference_f0: np.ndarray | Sequence[np.ndarray], *, max_shift: int = 24
) -> SourceFit:
    """Compare a song's F0 with a voice's F0: share outside the range and the suggested shift."""
    src = voiced_midi(source_f0)
    ref = voiced_midi(reference_f0)
    src_rng, ref_rng = pitch_range(src), pitch_range(ref)
    if src_rng is None or ref_rng is None:
        what = "the song" if src_rng is None else "the voice's data"
        return SourceFit(0.0, 0, 0.0, src_rng, ref_rng, f"no singing found in {what}")
    shift = suggest_transpose(source_f0, reference_f0, max_shift=max_shift)
    lo, hi = np.percentile(ref, RANGE_PERCENTILES)
    inside = _inside_counts(src, lo, hi, np.array([0, shift]))
    before, after = 1.0 - inside[0] / src.size, 1.0 - inside[1] / src.size
    head = (
        f"{100 * before:.0f} % of the song's notes lie outside the voice's range "
        f"({ref_rng.label}; the song spans {src_rng.label})"
    )
    if shift == 0:
        msg = f"{head} — no transpose suggested"
    else:
        msg = (
            f"{head} — suggested transpose: {shift:+d} semitones "
            f"({100 * after:.0f} % outside after it)"
        )
    return SourceFit(before, shift, after, src_rng, ref_rng, msg)
