"""F0 extractors on audio with known pitch: accuracy, octave errors, voicing, frame grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from svc_core.errors import AssetMissingError, BadInputError, IncompatibleError
from svc_core.f0 import (
    F0Params,
    cents_error,
    extract_f0,
    f0_accuracy,
    get_extractor,
    hz_to_midi,
    hz_to_note_name,
    midi_to_hz,
    midi_to_note_name,
    n_frames,
)
from svc_core.f0.base import median_within_voiced
from tests.common.synth import noise, silence, tone, tone_f0

SR = 44100
HOP = 0.01


def harmonic_glide(f_start: float, f_end: float, seconds: float, sr: int = SR):
    """Exponential glide with 3 harmonics (a voice-like spectrum: Harvest needs harmonics).

    Returns ``(audio [T], f0 at every hop [N])``.
    """
    t = np.arange(int(round(seconds * sr))) / sr
    f = f_start * (f_end / f_start) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    y = (0.3 * y / np.max(np.abs(y))).astype(np.float32)
    frames = np.arange(n_frames(len(y), sr, HOP)) * HOP
    return y, f_start * (f_end / f_start) ** (np.clip(frames, 0, seconds) / seconds)


def vibrato_tone(f0: float = 220.0, seconds: float = 2.0):
    audio = tone(f0, seconds, SR, harmonics=3, vibrato_hz=5.5, vibrato_cents=80)
    ref = tone_f0(f0, seconds, HOP, vibrato_hz=5.5, vibrato_cents=80)
    return audio, ref[: n_frames(len(audio), SR, HOP)]


# --- accuracy on known pitch -------------------------------------------------------------


@pytest.mark.parametrize("method", ["crepe-tiny", "fcpe", "harvest"])
def test_accuracy_on_vibrato_and_glides(method):
    cases = [vibrato_tone(220.0), vibrato_tone(523.25, 1.5), harmonic_glide(110.0, 660.0, 2.0)]
    for audio, ref in cases:
        f0 = extract_f0(audio, SR, F0Params(method=method))
        assert f0.dtype == np.float32 and len(f0) == len(ref)
        acc = f0_accuracy(f0, ref, tolerance_cents=50)
        assert acc.raw_pitch_accuracy >= 0.95, (method, acc)
        assert acc.octave_errors <= 0.01, (method, acc)


@pytest.mark.parametrize("method", ["dio", "praat"])
def test_fast_methods_are_sane(method):
    for audio, ref in (vibrato_tone(196.0), harmonic_glide(150.0, 600.0, 1.5)):
        f0 = extract_f0(audio, SR, F0Params(method=method))
        acc = f0_accuracy(f0, ref)
        assert acc.raw_pitch_accuracy >= 0.9, (method, acc)
        assert acc.octave_errors <= 0.05, (method, acc)


@pytest.mark.parametrize("method", ["crepe-tiny", "fcpe", "harvest", "dio", "praat"])
def test_silence_is_unvoiced(method):
    f0 = extract_f0(silence(1.0, SR), SR, F0Params(method=method))
    assert len(f0) == 100 and not f0.any()
    # Very faint noise (-80 dBFS) has no pitch either.
    f0 = extract_f0(noise(1.0, SR, amp=1e-4), SR, F0Params(method=method))
    assert (f0 > 0).mean() < 0.05


def test_silence_around_a_phrase_is_unvoiced():
    audio = np.concatenate([silence(0.5, SR), tone(300.0, 1.0, SR, harmonics=3), silence(0.5, SR)])
    f0 = extract_f0(audio, SR, F0Params(method="crepe-tiny"))
    assert not f0[:45].any() and not f0[-45:].any()
    assert np.all(np.abs(cents_error(f0[55:145], np.full(90, 300.0))) < 50)


@pytest.mark.parametrize("method", ["crepe-tiny", "dio", "praat"])
@pytest.mark.parametrize(("sr", "hop_s"), [(44100, 0.01), (22050, 0.01), (16000, 0.0125)])
def test_frame_count_convention(method, sr, hop_s):
    rng = np.random.default_rng(sr)
    for n in rng.integers(int(0.2 * sr), int(0.7 * sr), size=2):
        audio = tone(250.0, n / sr, sr, harmonics=2)[:n]
        f0 = extract_f0(audio, sr, F0Params(method=method, hop_s=hop_s))
        assert len(f0) == math.ceil(n / (sr * hop_s) - 1e-9)


def test_stereo_is_averaged_and_range_limits_apply():
    audio, ref = vibrato_tone(220.0, 1.0)
    stereo = np.stack([audio, audio])
    f0 = extract_f0(stereo, SR, F0Params(method="dio"))
    assert f0_accuracy(f0, ref).raw_pitch_accuracy >= 0.9
    # A ceiling below the tone's pitch leaves nothing voiced at that pitch.
    capped = extract_f0(audio, SR, F0Params(method="dio", f0_min=50, f0_max=150))
    assert not np.any((capped > 200) & (capped < 240))


def test_models_are_loaded_once_per_process():
    ext = get_extractor("crepe-tiny")
    audio = tone(220.0, 0.3, SR)
    extract_f0(audio, SR, F0Params(method="crepe-tiny"))
    first = dict(ext._models)
    extract_f0(audio, SR, F0Params(method="crepe-tiny"))
    assert get_extractor("crepe-tiny") is ext
    assert len(ext._models) == 1 and all(ext._models[k] is v for k, v in first.items())


def test_unknown_method_and_bad_params():
    with pytest.raises(BadInputError, match="unknown F0 method 'yin'.*harvest"):
        F0Params(method="yin")
    with pytest.raises(BadInputError, match="odd"):
        F0Params(median_filter=4)
    with pytest.raises(BadInputError, match="f0_min < f0_max"):
        F0Params(f0_min=500, f0_max=400)


# --- helpers ------------------------------------------------------------------------------


def test_pitch_units():
    np.testing.assert_allclose(
        hz_to_midi(np.array([440.0, 261.6256, 880.0])), [69, 60, 81], atol=1e-4
    )
    assert np.isnan(hz_to_midi(np.array([0.0]))[0])
    np.testing.assert_allclose(midi_to_hz(hz_to_midi(np.array([123.4]))), [123.4])
    assert midi_to_note_name(69) == "A4"
    assert midi_to_note_name(60.4) == "C4"
    assert midi_to_note_name(61) == "C#4"
    assert midi_to_note_name(59.6) == "C4"
    assert midi_to_note_name(23) == "B0"
    assert hz_to_note_name(27.5) == "A0"
    err = cents_error(np.array([440.0, 0.0, 880.0, 466.16]), np.array([440.0, 440.0, 440.0, 440.0]))
    np.testing.assert_allclose(err[[0, 2, 3]], [0.0, 1200.0, 100.0], atol=0.05)
    assert np.isnan(err[1])


def test_accuracy_counts_octave_errors_and_voicing():
    ref = np.full(100, 200.0)
    ref[:10] = 0.0  # unvoiced reference frames
    est = ref.copy()
    est[10:20] *= 2.0  # 10 octave errors
    est[20:25] = 0.0  # 5 voicing misses
    est[25:30] *= 2 ** (70 / 1200)  # 5 frames 70 cents off
    est[:2] = 150.0  # 2 false alarms
    acc = f0_accuracy(est, ref)
    assert acc.voiced_frames == 90
    assert acc.raw_pitch_accuracy == pytest.approx(70 / 90)
    assert acc.octave_errors == pytest.approx(10 / 90)
    assert acc.voicing_recall == pytest.approx(85 / 90)
    assert acc.voicing_false_alarm == pytest.approx(2 / 10)


def test_median_filter_removes_blips_inside_voiced_runs_only():
    f0 = np.array([0, 0, 200, 200, 400, 200, 200, 0, 0, 300, 0], dtype=np.float64)
    out = median_within_voiced(f0, 3)
    np.testing.assert_array_equal(out[:4], [0, 0, 200, 200])
    assert out[4] == 200  # octave blip gone
    assert out[7] == 0 and out[8] == 0 and out[10] == 0  # unvoiced stays unvoiced
    assert out[9] == 300  # a lone voiced frame keeps its value


# --- RMVPE --------------------------------------------------------------------------------


def test_rmvpe_without_weights_names_the_pull_command(tmp_path):
    with pytest.raises(AssetMissingError, match="svc-studio assets pull rmvpe"):
        extract_f0(tone(220.0, 0.5, SR), SR, F0Params(method="rmvpe"))
    with pytest.raises(AssetMissingError, match="svc-studio assets pull rmvpe"):
        extract_f0(
            tone(220.0, 0.5, SR),
            SR,
            F0Params(method="rmvpe", weights_path=str(tmp_path / "rmvpe.pt")),
        )


def test_rmvpe_loads_a_checkpoint_in_the_official_format(tmp_path):
    import torch

    from svc_core.f0.rmvpe import _build_network, load_rmvpe

    torch.manual_seed(0)
    net = _build_network(en_out=2, n_blocks=1, levels=2, inter_layers=1, n_gru=1, gru_hidden=8)
    # The official rmvpe.pt is a bare state dict stored in float16.
    path = tmp_path / "rmvpe.pt"
    torch.save({k: v.half() for k, v in net.state_dict().items()}, path)
    loaded = load_rmvpe(path)
    assert loaded.levels == 2
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in net.parameters())
    audio = tone(220.0, 1.234, SR, harmonics=3)
    params = F0Params(method="rmvpe", weights_path=str(path), device="cpu", voicing_threshold=0.0)
    f0 = extract_f0(audio, SR, params)
    assert f0.dtype == np.float32 and len(f0) == n_frames(len(audio), SR, HOP)
    voiced = f0[f0 > 0]
    assert voiced.size and np.all((voiced >= 50) & (voiced <= 1100))

    bad = tmp_path / "bad.pt"
    torch.save({"something": torch.zeros(3)}, bad)
    with pytest.raises(IncompatibleError, match="not an RMVPE checkpoint"):
        load_rmvpe(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(IncompatibleError):
        load_rmvpe(tmp_path / "junk.pt")


def test_rmvpe_salience_decoding():
    from svc_core.f0.rmvpe import CENTS_OFFSET, N_BINS, salience_to_f0

    bins = np.arange(N_BINS)
    targets = [440.0, 98.0, 1046.5]
    rows = []
    for hz in targets:
        centre = (1200 * np.log2(hz / 10.0) - CENTS_OFFSET) / 20.0  # fractional bin
        rows.append(0.9 * np.exp(-0.5 * ((bins - centre) / 1.5) ** 2))
    rows.append(np.full(N_BINS, 0.01))  # below the threshold: unvoiced
    f0 = salience_to_f0(np.stack(rows))
    assert np.all(np.abs(cents_error(f0[:3], np.array(targets))) < 5)
    assert f0[3] == 0.0


def _rmvpe_spectrum(audio16k: np.ndarray) -> np.ndarray:
    """The STFT magnitude RMVPE's front end computes (``[513, N]``)."""
    import torch

    from svc_core.f0.rmvpe import Rmvpe

    x = torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32))
    return Rmvpe()._log_mel(x, "cpu")[1].numpy()


@pytest.mark.parametrize(
    ("note", "harmonics", "reported", "expected"),
    [
        (1200.0, 4, 600.0, 1200.0),  # RMVPE's error on a high note: doubled
        (1200.0, 1, 600.0, 1200.0),  # a pure high sine too
        (900.0, 3, 450.0, 900.0),
        (900.0, 3, 900.0, 900.0),  # right already: odd partials present, left alone
        (600.0, 4, 600.0, 600.0),  # a true 600-Hz note keeps its fundamental
        (1500.0, 3, 1500.0, 1500.0),  # above the checked range: untouched
        (300.0, 4, 300.0, 300.0),  # low notes are not checked
    ],
)
def test_rmvpe_octave_guard_on_tones(note, harmonics, reported, expected):
    from svc_core.f0.rmvpe import N_FFT, RMVPE_SR, octave_guard

    audio = tone(note, 1.0, RMVPE_SR, harmonics=harmonics, vibrato_hz=5.5, vibrato_cents=40)
    mag = _rmvpe_spectrum(audio)
    f0 = np.full(mag.shape[1], reported)
    f0[:5] = 0.0  # unvoiced frames stay unvoiced
    out = octave_guard(mag, RMVPE_SR / N_FFT, f0)
    assert np.all(out[:5] == 0.0)
    # the vibrato's own ±40 cents are in the tone, not in the constant "estimate"
    assert np.all(out[10:-10] == expected)


def test_rmvpe_octave_guard_leaves_noise_and_short_blips():
    from svc_core.f0.rmvpe import N_FFT, RMVPE_SR, octave_guard

    hiss = noise(1.0, RMVPE_SR, amp=0.1, seed=3)
    mag = _rmvpe_spectrum(hiss)
    f0 = np.full(mag.shape[1], 500.0)
    assert np.array_equal(octave_guard(mag, RMVPE_SR / N_FFT, f0), f0)
    # one odd frame inside a note is outvoted by its neighbours, either way
    hi = _rmvpe_spectrum(tone(1200.0, 1.0, RMVPE_SR, harmonics=3))
    lo = _rmvpe_spectrum(tone(600.0, 1.0, RMVPE_SR, harmonics=4))
    f0 = np.full(hi.shape[1], 600.0)
    mixed = hi.copy()
    mixed[:, 50] = lo[:, 50]
    assert np.all(octave_guard(mixed, RMVPE_SR / N_FFT, f0)[3:-3] == 1200.0)
    mixed = lo.copy()
    mixed[:, 50] = hi[:, 50]
    assert np.array_equal(octave_guard(mixed, RMVPE_SR / N_FFT, f0), f0)
    assert octave_guard(hi[:, :0], RMVPE_SR / N_FFT, f0[:0]).shape == (0,)


def test_rmvpe_applies_the_octave_guard(tmp_path, monkeypatch):
    """The extractor runs the guard on its network's estimate: a network that reports the
    octave below a 1.2-kHz note (RMVPE's known error) comes out right."""
    import torch

    from svc_core.f0 import rmvpe

    torch.manual_seed(0)
    net = rmvpe._build_network(
        en_out=2, n_blocks=1, levels=2, inter_layers=1, n_gru=1, gru_hidden=8
    )
    path = tmp_path / "rmvpe.pt"
    torch.save(net.state_dict(), path)
    # stand in for the trained network's salience decoding: an octave-down estimate
    monkeypatch.setattr(rmvpe, "salience_to_f0", lambda sal, thr: np.full(len(sal), 600.0))
    params = F0Params(method="rmvpe", weights_path=str(path), device="cpu", f0_max=1500.0)
    f0 = extract_f0(tone(1200.0, 1.0, SR, harmonics=4), SR, params)
    assert np.median(f0[f0 > 0]) == pytest.approx(1200.0)


def test_f0_command(tmp_path):
    from click.testing import CliRunner

    from svc_core.commands.f0 import f0_cmd
    from tests.common.synth import write

    audio, _ = vibrato_tone(220.0, 1.0)
    src = write(tmp_path / "a.wav", audio, SR)
    out = tmp_path / "f0.npy"
    res = CliRunner().invoke(f0_cmd, [str(src), "--method", "praat", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "range A3–A3" in res.output or "range G#3–A#3" in res.output
    assert len(np.load(out)) == 100
    res = CliRunner().invoke(f0_cmd, [str(src), "--method", "rmvpe"])
    assert res.exit_code == 1 and "svc-studio assets pull rmvpe" in res.output


def test_fcpe_is_the_cpu_default_and_loads_from_its_wheel():
    from svc_core.f0.base import recommended_method

    assert recommended_method(False) == "fcpe" and recommended_method(True) == "crepe-full"
    f0 = extract_f0(vibrato_tone(330.0)[0], SR, F0Params(method="fcpe", device="cpu"))
    assert np.median(f0[f0 > 0]) == pytest.approx(330.0, rel=0.03)


def test_long_audio_followed_by_a_caller_is_tracked_in_pieces_with_the_same_result():
    """A whole song's pitch reports progress piece by piece and can be cancelled between
    pieces; the stitched curve is the one-piece curve (context on both sides of each piece)."""
    from svc_core.errors import Cancelled
    from svc_core.f0.base import SEGMENT_S

    sr = 16000
    seconds = 2.2 * SEGMENT_S + 0.37  # three pieces, the last a short one
    t = np.arange(int(seconds * sr)) / sr
    hz = 220.0 * 2 ** (0.5 * np.sin(2 * np.pi * 0.3 * t))  # a slow glide over an octave
    y = (0.3 * np.sin(2 * np.pi * np.cumsum(hz) / sr)).astype(np.float32)
    y[int(20.5 * sr) : int(21.5 * sr)] = 0.0  # a rest near a piece boundary
    params = F0Params(method="dio", hop_s=0.01)
    whole = extract_f0(y, sr, params)
    seen: list[float] = []
    pieces = extract_f0(y, sr, params, progress=seen.append)
    assert seen == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert pieces.shape == whole.shape
    voiced = (whole > 0) & (pieces > 0)
    assert ((whole > 0) == (pieces > 0)).mean() > 0.999
    cents = 1200 * np.abs(np.log2(pieces[voiced] / whole[voiced]))
    assert np.percentile(cents, 99.9) < 5.0
    calls = []
    with pytest.raises(Cancelled):
        extract_f0(y, sr, params, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2  # stopped before the second piece
