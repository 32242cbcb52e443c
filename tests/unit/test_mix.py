"""Mixing: lengths, loudness matching, true-peak ceiling, transposed instrumental, formats."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from svc_core.audio.dsp import loudness_lufs, normalize_loudness
from svc_core.errors import BadInputError
from svc_core.mix import MixParams, export_audio, mix_arrays, mix_files, true_peak_dbtp
from tests.common import synth

SR = 44100


def dominant_hz(audio: np.ndarray, sr: int) -> float:
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spec) * sr / len(mono))


@pytest.mark.parametrize("voc_seconds", [2.5, 3.0, 3.7])
def test_output_has_instrumental_length(voc_seconds):
    voc = synth.tone(300.0, voc_seconds, sr=32000)  # the model's rate, mono
    inst = np.stack([synth.noise(3.0, seed=1), synth.noise(3.0, seed=2)])
    mix, rep = mix_arrays(voc, 32000, inst, SR)
    assert mix.shape == (2, 3 * SR) and mix.dtype == np.float32
    assert rep.duration_s == 3.0 and rep.sample_rate == SR


def test_vocals_matched_to_original_loudness():
    voc = normalize_loudness(synth.tone(250.0, 4.0, harmonics=5), SR, -32.0)
    ref = normalize_loudness(synth.tone(260.0, 4.0, harmonics=5), SR, -18.0)
    inst = normalize_loudness(synth.noise(4.0, seed=3), SR, -30.0)
    _, rep = mix_arrays(voc, SR, inst, SR, reference_vocals=ref, reference_sr=SR)
    # loudness is measured on the stereo version (BS.1770 sums channel powers: +3 dB)
    assert abs(rep.vocals_lufs - (loudness_lufs(np.stack([ref, ref]), SR))) < 0.5
    assert abs(rep.vocal_gain_applied_db - 14.0) < 0.5
    _, plain = mix_arrays(voc, SR, inst, SR, MixParams(vocal_gain_db=-3.0))
    assert plain.vocal_gain_applied_db == -3.0


@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
def test_true_peak_never_exceeds_ceiling(ceiling):
    # two loud signals whose sum would clip by far; square-ish waves have inter-sample overs
    voc = synth.tone(997.0, 3.0, amp=0.95, harmonics=9)
    inst = np.stack([synth.tone(151.0, 3.0, amp=0.95, harmonics=9)] * 2)
    mix, rep = mix_arrays(voc, SR, inst, SR, MixParams(ceiling_dbtp=ceiling, match_loudness=False))
    assert true_peak_dbtp(mix, SR) <= ceiling + 1e-3
    assert rep.true_peak_dbtp <= ceiling
    assert rep.limiter_gain_reduction_db > 3.0
    assert np.max(np.abs(mix)) < 1.0


def test_limiter_keeps_timing():
    inst = np.zeros((2, 2 * SR), np.float32)
    onset = SR // 2
    inst[:, onset : onset + SR // 2] = synth.tone(440.0, 0.5, amp=0.9)
    voc = np.zeros(2 * SR, np.float32)
    mix, _ = mix_arrays(voc, SR, inst, SR, MixParams(match_loudness=False))
    env = np.abs(mix[0])
    first = int(np.argmax(env > 0.05))
    assert abs(first - onset) <= 64  # within 1.5 ms: no look-ahead delay left in the output


def test_instrumental_transposed_with_vocals():
    inst = np.stack([synth.tone(440.0, 2.0, amp=0.3)] * 2)
    voc = synth.silence(2.0)
    for semitones in (12, -3):
        mix, _ = mix_arrays(voc, SR, inst, SR, MixParams(transpose_instrumental=semitones))
        want = 440.0 * 2 ** (semitones / 12)
        assert abs(dominant_hz(mix[:, SR // 4 : -SR // 4], SR) - want) < 1.5  # FFT bin 0.67 Hz
        assert mix.shape[1] == 2 * SR
        # timing kept: the shifted tone starts where the original did
        assert np.abs(mix[0, : SR // 50]).max() > 0.05


def test_reverb_adds_a_tail():
    voc = np.concatenate([synth.tone(300.0, 1.0, amp=0.5), synth.silence(1.0)])
    dry, _ = mix_arrays(voc, SR, None, None, MixParams(match_loudness=False))
    wet, _ = mix_arrays(voc, SR, None, None, MixParams(reverb_wet=0.5, match_loudness=False))
    tail = slice(int(1.2 * SR), int(1.5 * SR))
    assert np.sqrt(np.mean(wet[:, tail] ** 2)) > 10 * np.sqrt(np.mean(dry[:, tail] ** 2)) + 1e-4


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("wav16", "PCM_16"), ("wav24", "PCM_24"), ("flac", "PCM_24"), ("mp3", "MPEG_LAYER_III")],
)
def test_export_formats(tmp_path, fmt, subtype):
    audio = np.stack([synth.tone(440.0, 2.0), synth.tone(550.0, 2.0)])
    path = export_audio(tmp_path / f"out.{fmt}", audio, SR, fmt)
    info = sf.info(str(path))
    assert info.samplerate == SR and info.channels == 2 and info.subtype == subtype
    tolerance = 0.06 if fmt == "mp3" else 0.0  # encoder padding
    assert abs(info.frames / SR - 2.0) <= tolerance
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{fmt}"]


def test_mix_files_end_to_end(tmp_path):
    voc = synth.write(tmp_path / "v.wav", synth.tone(300.0, 3.0, sr=32000), 32000, "FLOAT")
    inst = synth.write(tmp_path / "i.wav", np.stack([synth.noise(3.0)] * 2), SR)
    out = tmp_path / "mix.wav"
    seen: list[float] = []
    rep = mix_files(
        voc,
        inst,
        out,
        MixParams(output_format="wav24"),
        reference_vocals=voc,
        progress=lambda _s, f: seen.append(f),
    )
    data, sr = sf.read(str(out), always_2d=True)
    assert sr == SR and data.shape == (3 * SR, 2) and rep.mix_lufs > -40
    assert seen[-1] == 1.0


def test_bad_params():
    with pytest.raises(BadInputError, match="output format"):
        MixParams(output_format="aiff")
    with pytest.raises(BadInputError, match="reverb"):
        MixParams(reverb_wet=2)
    with pytest.raises(BadInputError, match="empty"):
        mix_arrays(np.zeros(0, np.float32), SR, None, None)
