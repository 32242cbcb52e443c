"""Coverage report and transpose suggestion on F0 curves with known notes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svc_core.f0.pitch import midi_to_hz
from svc_core.report import SliceStats, coverage_report, source_fit, suggest_transpose

HOP = 0.01


def notes_f0(*segments: tuple[float, float]) -> np.ndarray:
    """F0 curve from ``(midi or 0 for unvoiced, seconds)`` segments."""
    parts = [
        np.full(int(round(sec / HOP)), midi_to_hz(m) if m else 0.0, dtype=np.float32)
        for m, sec in segments
    ]
    return np.concatenate(parts)


def test_histogram_range_and_totals():
    slices = [
        SliceStats(notes_f0((0, 0.5), (57, 2.0), (0, 0.5)), 3.0, -20.0, "a.wav"),  # A3
        SliceStats(notes_f0((60, 1.0), (0, 1.0)), 2.0, -21.0, "b.wav"),  # C4
        SliceStats(notes_f0((64.2, 1.0)), 1.0, -19.0, "c.wav"),  # E4 (a little sharp)
    ]
    rep = coverage_report(slices, hop_s=HOP)
    assert rep.slice_count == 3
    assert rep.total_s == pytest.approx(6.0)
    assert rep.voiced_s == pytest.approx(4.0)
    assert [(b.note, b.seconds) for b in rep.histogram] == [("A3", 2.0), ("C4", 1.0), ("E4", 1.0)]
    assert [b.share for b in rep.histogram] == pytest.approx([0.5, 0.25, 0.25])
    assert rep.range.low_note == "A3" and rep.range.high_note == "E4"
    assert rep.range.min_note == "A3" and rep.range.max_note == "E4"
    assert rep.range.low_hz == pytest.approx(220.0, abs=0.01)
    assert rep.loudness.spread_db == pytest.approx(2.0)
    assert any(
        w.startswith("less than 10 minutes of singing (found 0.1 min); 15–30 minutes")
        for w in rep.warnings
    )
    assert not any("narrow range" in w for w in rep.warnings)  # 7.2 semitones is enough
    narrow = coverage_report(slices[:2], hop_s=HOP)
    assert any("narrow range (A3–C4, 3 semitones)" in w for w in narrow.warnings)
    data = json.loads(json.dumps(rep.to_dict()))
    assert data["range"]["label"] == "A3–E4" and data["histogram"][0]["note"] == "A3"
    assert data["voiced_share"] == pytest.approx(4 / 6, abs=1e-3)


def test_enough_varied_data_gives_no_warnings():
    rng = np.random.default_rng(0)
    slices = []
    for i in range(80):  # 80 slices of 9 s = 12 min, melodies across two octaves
        midi = 50 + 24 * rng.random(9)
        f0 = notes_f0(*[(m, 0.9) for m in midi], (0, 0.9))
        slices.append(SliceStats(f0, 9.0, -18.0 + rng.normal(0, 2), f"s{i}.wav"))
    rep = coverage_report(slices, hop_s=HOP)
    assert rep.warnings == []
    assert rep.total_s / 60 == pytest.approx(12.0)
    assert 50 <= rep.range.low_midi < 53 and 71 < rep.range.high_midi <= 74


def test_loudness_and_voicing_warnings():
    loud = [SliceStats(notes_f0((55, 2.0), (67, 2.0)), 4.0, -16.0, f"s{i}.wav") for i in range(3)]
    quiet = SliceStats(notes_f0((60, 0.5), (0, 9.5)), 10.0, -45.0, "faint.wav")
    rep = coverage_report([*loud, quiet], hop_s=HOP)
    text = " ".join(rep.warnings)
    assert "varies by 29 dB" in text and "faint.wav" in text
    assert "only 40 % of the sliced audio has a pitch" not in text  # 12.5 / 22 s = 57 %
    rep = coverage_report([quiet], hop_s=HOP)
    assert any(w.startswith("only 5 % of the sliced audio has a pitch") for w in rep.warnings)


def test_a_singer_near_fcpes_ceiling_is_told_to_use_another_f0_method():
    high = [SliceStats(notes_f0((72, 2.0), (83, 2.0)), 4.0, -18.0, "high.wav")]  # C5-B5
    rep = coverage_report(high, hop_s=HOP, f0_method="fcpe")
    assert any("close to what FCPE can track" in w and "crepe" in w for w in rep.warnings)
    for other in ("crepe-full", "harvest", None):
        assert not any("FCPE" in w for w in coverage_report(high, f0_method=other).warnings)
    low = [SliceStats(notes_f0((60, 2.0), (76, 2.0)), 4.0, -18.0, "low.wav")]  # C4-E5
    assert not any("FCPE" in w for w in coverage_report(low, f0_method="fcpe").warnings)


def test_no_singing():
    rep = coverage_report([], hop_s=HOP)
    assert rep.range is None and rep.histogram == []
    assert "no singing found" in rep.warnings[0]
    json.dumps(rep.to_dict())
    fit = source_fit(np.zeros(100), notes_f0((60, 1.0)))
    assert fit.suggested_transpose == 0 and "no singing found in the song" in fit.message


def test_suggest_transpose_moves_a_high_song_into_range():
    rng = np.random.default_rng(1)
    reference = midi_to_hz(57 + 12 * rng.random(5000))  # voice: A3..A4
    melody = 57 + 12 * rng.random(3000) + 5  # the same kind of melody, 5 semitones higher
    source = np.concatenate([midi_to_hz(melody), np.zeros(500)])
    assert suggest_transpose(source, reference) == -5
    fit = source_fit(source, [reference[:2500], reference[2500:]])
    assert fit.suggested_transpose == -5
    assert fit.outside_share > 0.4 and fit.outside_share_after < 0.15
    assert f"{100 * fit.outside_share:.0f} % of the song's notes lie outside" in fit.message
    assert "suggested transpose: -5 semitones" in fit.message
    json.dumps(fit.to_dict())


def test_transpose_ties_go_to_the_smallest_shift():
    rng = np.random.default_rng(2)
    reference = midi_to_hz(59.5 + 5 * rng.random(20000))  # 5-95 %: about 59.75..64.25
    # Inside already: every shift from -1 to +1 keeps it inside; 0 wins.
    assert suggest_transpose(midi_to_hz(np.full(50, 62.0)), reference) == 0
    # Two notes: +2 or -2 each bring one inside (and +6, -6 too); none does both.
    two = midi_to_hz(np.array([58.0] * 50 + [66.0] * 50))
    assert suggest_transpose(two, reference) == -2


def test_suggest_transpose_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        ref_midi = rng.normal(rng.uniform(50, 70), rng.uniform(1, 6), 800)
        src_midi = rng.normal(rng.uniform(45, 75), rng.uniform(1, 6), 400)
        lo, hi = np.percentile(ref_midi, [5, 95])
        best = max(
            range(-24, 25),
            key=lambda s: (np.sum((src_midi + s >= lo) & (src_midi + s <= hi)), -abs(s), -s),
        )
        assert suggest_transpose(midi_to_hz(src_midi), midi_to_hz(ref_midi)) == best


def test_every_field_the_report_writes_is_in_the_api_schema():
    """One definition of the report's fields: what coverage_report writes (and the
    preprocessing job stores) is what CoverageReportPublic declares, the spec documents and
    the voice page reads; a field renamed on one side fails here."""
    from app.api.schemas import (
        CoverageReportPublic,
        HistogramBinPublic,
        LoudnessPublic,
        PitchRangePublic,
    )
    from svc_core.report.coverage import SliceStats, coverage_report

    f0 = (220.0 * 2 ** (np.sin(np.linspace(0, 30, 2000)) / 2)).astype(np.float32)
    stats = [
        SliceStats(f0=f0, duration_s=20.0, loudness_lufs=-20.0 - i, name=f"s{i}") for i in range(3)
    ]
    d = coverage_report(stats, hop_s=0.01).to_dict()
    assert d["range"] and d["histogram"] and d["loudness"]
    written = {*d, "skipped"}  # the job adds the skipped slices
    assert written <= set(CoverageReportPublic.model_fields)
    assert set(d["range"]) <= set(PitchRangePublic.model_fields)
    assert set(d["histogram"][0]) <= set(HistogramBinPublic.model_fields)
    assert set(d["loudness"]) <= set(LoudnessPublic.model_fields)
    parsed = CoverageReportPublic.model_validate(d)
    assert parsed.slice_count == 3 and parsed.range is not None and parsed.range.low_note
    assert not parsed.model_extra  # nothing undeclared
