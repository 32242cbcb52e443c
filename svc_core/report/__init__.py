"""Reports shown by the API and UI: data coverage of a voice, fit of a song to a voice."""

from svc_core.report.coverage import (
    CoverageReport,
    HistogramBin,
    LoudnessStats,
    PitchRange,
    SliceStats,
    SourceFit,
    coverage_report,
    pitch_histogram,
    pitch_range,
    source_fit,
    suggest_transpose,
    voiced_midi,
)

__all__ = [
    "CoverageReport",
    "HistogramBin",
    "LoudnessStats",
    "PitchRange",
    "SliceStats",
    "SourceFit",
    "coverage_report",
    "pitch_histogram",
    "pitch_range",
    "source_fit",
    "suggest_transpose",
    "voiced_midi",
]
