"""Slicer: cut points follow the Audio Slicer's documented rules; slicing loses nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from svc_core.audio.slicer import (
    SliceParams,
    manifest_path,
    read_manifest,
    slice_audio,
    slice_file,
)
from svc_core.errors import BadAudioError, BadInputError, Cancelled
from tests.common.synth import noise, phrases, silence, tone, write

SR = 44100
HOP = SR // 100  # 10 ms
HALF_WIN = 2 * HOP  # RMS window = 4 hops, centred: silence is seen 20 ms after a phrase ends
KEEP = 0.5  # max_sil_kept


def _s(t: float) -> int:
    return int(round(t * SR))


def _rejoin(audio: np.ndarray, slices) -> np.ndarray:
    """Slices and the silences between them, concatenated back in order."""
    parts, pos = [], 0
    for s in slices:
        parts.append(audio[..., pos : s.start])  # removed silence
        parts.append(audio[..., s.start : s.end])  # the slice itself
        pos = s.end
    parts.append(audio[..., pos:])
    return np.concatenate(parts, axis=-1)


def test_cut_points_follow_the_documented_rules():
    # gap:     lead 1.0 | 2.0 (> 2*keep) | 0.4 (<= keep) | 0.8 (keep..2*keep) | 0.6 | tail 1.5
    # phrase3 is 3 s: the 0.6 s gap after it is long enough, but the slice would be < 5 s.
    durations = [6.0, 6.0, 6.0, 3.0, 6.0]
    gaps = [1.0, 2.0, 0.4, 0.8, 0.6, 1.5]
    audio, spans = phrases(durations, gaps, SR)
    got = slice_audio(audio, SR, SliceParams())
    (on0, off0), (on1, off1), (_on2, off2), (on3, _off3), (_on4, off4) = spans
    # Long silences: the next slice keeps max_sil_kept of silence before its first loud
    # frame (quietest frame = first zero frame of the last keep+1 frames); the previous slice
    # ends at the first silent frame. Silence <= keep: one cut at its first (quietest) frame.
    expected = [
        (on0 - HALF_WIN / SR - KEEP, off0 + HALF_WIN / SR),
        (on1 - HALF_WIN / SR - KEEP, off1 + HALF_WIN / SR),
        (off1 + HALF_WIN / SR, off2 + HALF_WIN / SR),
        (on3 - HALF_WIN / SR - KEEP, off4 + HALF_WIN / SR),
    ]
    assert len(got) == len(expected), got
    for s, (a, b) in zip(got, expected, strict=True):
        assert abs(s.start - _s(a)) <= HOP, (s, a, b)
        assert abs(s.end - _s(b)) <= HOP, (s, a, b)
    assert got[1].end == got[2].start  # a short silence is a cut, nothing removed


def test_short_gap_is_not_cut():
    audio, _ = phrases([6.0, 6.0], [0.3, 0.2, 0.3], SR)  # 0.2 s < min_interval
    got = slice_audio(audio, SR)
    assert len(got) == 1


def test_slices_and_removed_silences_rebuild_the_input_exactly():
    rng = np.random.default_rng(7)
    parts = []
    for _ in range(8):
        parts.append(silence(float(rng.uniform(0.05, 2.5)), SR))
        parts.append(
            tone(float(rng.uniform(120, 600)), float(rng.uniform(0.5, 7)), SR, harmonics=2)
        )
    parts.append(silence(0.7, SR))
    mono = np.concatenate(parts) + noise(sum(len(p) for p in parts) / SR, SR, amp=1e-4)
    stereo = np.stack([mono, 0.5 * mono])
    got = slice_audio(stereo, SR, SliceParams(max_length_s=6.0))
    assert len(got) >= 3
    assert all(0 <= a.start < a.end <= b.start < b.end for a, b in zip(got, got[1:], strict=False))
    assert all(s.length <= _s(6.0) for s in got)
    np.testing.assert_array_equal(_rejoin(stereo, got), stereo)
    # Channels are averaged for the analysis: a mono mix of the same audio cuts the same way.
    assert [
        (s.start, s.end) for s in slice_audio(stereo.mean(axis=0), SR, SliceParams(max_length_s=6))
    ] == [(s.start, s.end) for s in got]


def test_long_slice_is_split_at_its_quietest_frames():
    seconds = 40.0
    t = np.arange(_s(seconds)) / SR
    env = np.ones_like(t)
    for centre, depth in ((12.0, 0.03), (26.0, 0.06), (33.0, 0.5)):
        env *= 1 - (1 - depth) * np.exp(-0.5 * ((t - centre) / 0.02) ** 2)
    audio = (tone(220, seconds, SR, harmonics=3, vibrato_hz=5, vibrato_cents=30) * env).astype(
        np.float32
    )
    got = slice_audio(audio, SR, SliceParams(max_length_s=15.0))
    assert len(got) == 3
    assert abs(got[0].end - _s(12.0)) <= HOP and got[0].end == got[1].start
    assert abs(got[1].end - _s(26.0)) <= HOP and got[1].end == got[2].start
    assert got[0].start == 0 and got[-1].end == len(audio)
    # Off: one slice.
    assert len(slice_audio(audio, SR, SliceParams(max_length_s=0))) == 1


def test_silence_only_is_a_clear_error():
    with pytest.raises(BadAudioError, match="no singing found above -40 dB"):
        slice_audio(silence(10.0, SR), SR)
    with pytest.raises(BadAudioError, match="no singing found above -30 dB"):
        slice_audio(noise(10.0, SR, amp=0.01), SR, SliceParams(threshold_db=-30))


def test_too_short_is_a_clear_error():
    with pytest.raises(BadAudioError, match=r"1\.0 s long; slicing needs at least 5 s"):
        slice_audio(tone(220, 1.0, SR), SR)


def test_bad_params_are_refused():
    with pytest.raises(BadInputError, match="min_length >= min_interval"):
        SliceParams(min_interval_ms=6000)
    with pytest.raises(BadInputError, match="max_sil_kept"):
        SliceParams(max_sil_kept_ms=5)


def test_slice_file_writes_wavs_and_manifest(tmp_path):
    audio, _ = phrases([6.0, 6.0, 6.0], [1.0, 1.5, 1.5, 1.0], SR)
    src = write(tmp_path / "song.wav", np.stack([audio, audio]), SR, subtype="FLOAT")
    seen: list[float] = []
    infos = slice_file(src, tmp_path / "out", progress=lambda _s, f: seen.append(f))
    assert len(infos) == 3
    assert seen[0] == 0.0 and seen[-1] == pytest.approx(1.0)
    data = read_manifest(manifest_path(tmp_path / "out", src))
    assert data["sample_rate"] == SR and data["channels"] == 2
    assert data["params"]["threshold_db"] == -40.0
    for info, entry in zip(infos, data["slices"], strict=True):
        assert entry == json.loads(json.dumps(info.to_dict()))
        wav, sr = sf.read(tmp_path / "out" / info.path, dtype="float32", always_2d=True)
        assert sr == SR
        np.testing.assert_array_equal(wav.T, np.stack([audio, audio])[:, info.start : info.end])


def test_slice_file_can_be_cancelled(tmp_path):
    audio, _ = phrases([6.0, 6.0], [1.0, 1.5, 1.0], SR)
    src = write(tmp_path / "song.wav", audio, SR)
    with pytest.raises(Cancelled):
        slice_file(src, tmp_path / "out", should_stop=lambda: True)
    assert not manifest_path(tmp_path / "out", src).exists()


def test_slice_file_names_the_file_in_errors(tmp_path):
    src = write(tmp_path / "quiet.wav", silence(8.0, SR), SR)
    with pytest.raises(BadAudioError, match="'quiet.wav': no singing found"):
        slice_file(src, tmp_path / "out")


def test_slice_command(tmp_path):
    from click.testing import CliRunner

    from svc_core.commands.slice import slice_cmd

    audio, _ = phrases([6.0, 6.0], [1.0, 1.5, 1.0], SR)
    src = write(tmp_path / "take.wav", audio, SR)
    res = CliRunner().invoke(slice_cmd, [str(src), str(tmp_path / "out"), "--max-length", "4"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("4 slices")  # two 6.5 s phrases, each split once
    assert len(read_manifest(manifest_path(tmp_path / "out", src))["slices"]) == 4
    quiet = write(tmp_path / "quiet.wav", silence(6.0, SR), SR)
    res = CliRunner().invoke(slice_cmd, [str(quiet), str(tmp_path / "out")])
    assert res.exit_code == 1 and "no singing found above -40 dB" in res.output


@pytest.mark.parametrize(("win", "hop"), [(1764, 441), (882, 309)])
def test_rms_frames_match_a_direct_computation(win, hop):
    from svc_core.audio.slicer import rms_frames

    x = np.concatenate([noise(0.3, SR, amp=0.2, seed=3), silence(0.2, SR), tone(300, 0.25, SR)])
    got = rms_frames(x, win, hop)
    padded = np.pad(x.astype(np.float64), (win // 2, win // 2))
    n = 1 + (len(padded) - win) // hop
    want = np.sqrt([np.mean(padded[i * hop : i * hop + win] ** 2) for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert (got == 0).sum() == (want == 0).sum() > 0  # digital silence is exactly zero
