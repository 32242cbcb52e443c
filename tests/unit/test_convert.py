"""Conversion with a real (tiny) trained voice: lengths, silence, the pitch path, chunking.

The voice is trained here for a few hundred steps on harmonic tones with the tiny config,
from features the real preprocess computed with tiny official-format encoders.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from svc_core.content.extract import ContentParams
from svc_core.convert.chunks import ChunkParams
from svc_core.convert.engine import ConvertParams, convert_vocals
from svc_core.errors import BadInputError
from svc_core.f0.base import F0Params, extract_f0
from svc_core.f0.pitch import f0_accuracy
from svc_core.model.inference import load_voice_model
from svc_core.preprocess import PreprocessParams, build_dataset
from svc_core.train.package import export_voice_package
from svc_core.train.trainer import TrainParams, train
from tests.common import synth
from tests.common.tiny_assets import install_tiny_assets

SR = 44100
STEPS = 300
HARVEST = F0Params(method="harvest")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("voice")
    install_tiny_assets(d / "models")
    content = ContentParams(
        ppg_checkpoint=str(d / "models/tiny.pt"),
        vec_checkpoint=str(d / "models/hubert-soft-0d54a1f4.pt"),
    )
    slices = []
    for i, f0 in enumerate((165.0, 196.0, 220.0, 262.0, 294.0, 330.0)):
        y = synth.tone(f0, 2.0, SR, amp=0.3, harmonics=8, vibrato_hz=5, vibrato_cents=40)
        y = y + synth.noise(2.0, SR, amp=0.003, seed=i)  # a noise floor, as in recordings
        slices.append(synth.write(d / f"slice{i}.wav", y, SR, "FLOAT"))
    # no validation split: which slice it would hold out depends on the slices' ids, which
    # hash the checkpoints' file identities (tmp paths, mtimes), so the trained voice and
    # the pitch figures below would change with whatever ran before this module
    params = PreprocessParams(
        sample_rate=16000, hop_length=64, f0=HARVEST, content=content, valid_fraction=0.0
    )
    built = build_dataset(slices, d / "dataset", params)
    result = train(
        d / "dataset",
        d / "run",
        "tiny",
        TrainParams(max_steps=STEPS, eval_interval=10_000, save_interval=10_000, device="cpu"),
    )
    pkg = export_voice_package(
        result.checkpoint,
        d / "voice.zip",
        built.speaker_path,
        {"features": {"f0_method": "harvest"}},
    )
    model = load_voice_model(pkg)
    reference = np.concatenate([np.load(s.f0_path) for s in built.slices])
    return {
        "model": model,
        "params": ConvertParams(f0=HARVEST, content=content),
        "reference": reference,
        "dataset": d / "dataset",
    }


@pytest.fixture(scope="module")
def voice(trained):
    return trained["model"], trained["params"], trained["reference"]


@pytest.mark.parametrize("seed", range(4))
def test_output_length_equals_input_length(voice, seed):
    model, params, _ = voice
    rng = np.random.default_rng(seed)
    sr = int(rng.choice([22050, 44100, 48000]))
    n = int(rng.integers(int(0.3 * sr), int(6 * sr)))
    x = synth.tone(float(rng.uniform(150, 300)), n / sr + 0.01, sr, amp=0.3, harmonics=6)[:n]
    small = replace(params, chunks=ChunkParams(max_chunk_s=2.0, search_s=1.0, context_s=0.2))
    res = convert_vocals(x, sr, model, small)
    assert abs(len(res.audio) - n * model.sample_rate / sr) <= model.hop_length
    assert len(res.audio_44k) == round(n * 44100 / sr)
    assert np.isfinite(res.audio).all()


def test_silence_stays_silent(voice):
    model, params, _ = voice
    res = convert_vocals(np.zeros(SR * 2, np.float32), SR, model, params)
    assert not res.audio.any() and not res.audio_44k.any()
    # a rest inside a phrase stays a rest
    x = np.concatenate(
        [
            synth.tone(220.0, 1.0, SR, amp=0.3, harmonics=6),
            synth.silence(1.0),
            synth.tone(220.0, 1.0, SR, amp=0.3, harmonics=6),
        ]
    )
    out = convert_vocals(x, SR, model, params).audio_44k
    rest = out[int(1.15 * SR) : int(1.85 * SR)]
    assert np.sqrt(np.mean(rest**2)) < 1e-3 < np.sqrt(np.mean(out[: SR // 2] ** 2))


def test_output_pitch_follows_the_transposed_source(voice):
    model, params, _ = voice
    src_f0 = 196.0
    x = synth.tone(src_f0, 2.5, SR, amp=0.3, harmonics=8, vibrato_hz=5, vibrato_cents=40)
    for semitones in (0, 5):
        res = convert_vocals(x, SR, model, replace(params, transpose=float(semitones)))
        want = extract_f0(x, SR, HARVEST) * 2 ** (semitones / 12)
        got = extract_f0(res.audio_44k, 44100, HARVEST)
        acc = f0_accuracy(got[10:-10], want[10:-10])
        assert acc.raw_pitch_accuracy > 0.8, (semitones, acc)
        assert res.transpose == semitones and res.transpose_mode == "manual"


def test_another_speaker_embedding_changes_the_output(voice):
    from svc_core.speaker import mix_speakers

    model, params, _ = voice
    x = synth.tone(220.0, 1.5, SR, amp=0.3, harmonics=8)
    own = convert_vocals(x, SR, model, params).audio
    rng = np.random.default_rng(0)
    other = np.abs(rng.standard_normal(256)).astype(np.float32)
    blended = mix_speakers(model.speaker, other / np.linalg.norm(other), 0.8)
    mixed = convert_vocals(x, SR, model, params, speaker=blended).audio
    assert own.shape == mixed.shape
    assert np.abs(own - mixed).max() > 1e-3 * max(np.abs(own).max(), 1e-6)


def test_auto_transpose_moves_a_low_song_into_the_voice_range(voice):
    model, params, reference = voice
    low = synth.tone(98.0, 2.0, SR, amp=0.3, harmonics=8)  # an octave under the voice
    res = convert_vocals(low, SR, model, replace(params, transpose=None), reference_f0=reference)
    assert res.transpose_mode == "auto" and 9 <= res.transpose <= 19
    assert res.fit is not None and res.fit["outside_share"] > 0.9
    with pytest.raises(BadInputError, match="automatic transpose"):
        convert_vocals(low, SR, model, replace(params, transpose=None))


# -- feature retrieval, consonant protection, volume envelope --------------------------------


def test_retrieval_ratio_0_is_bit_identical_to_no_index(trained):
    from svc_core.retrieval import build_voice_index, dataset_features

    model, params = trained["model"], trained["params"]
    index = build_voice_index(dataset_features(trained["dataset"]))
    x = synth.tone(230.0, 2.5, 44100, amp=0.3, harmonics=6)
    plain = convert_vocals(x, 44100, model, params)
    zero = convert_vocals(x, 44100, model, params, index=index)  # ratio 0 (the default)
    assert np.array_equal(plain.audio, zero.audio)
    full = convert_vocals(x, 44100, model, replace(params, retrieval_ratio=1.0), index=index)
    assert full.audio.shape == plain.audio.shape and not np.array_equal(full.audio, plain.audio)
    assert np.isfinite(full.audio).all()
    quiet = convert_vocals(x, 44100, model, replace(params, volume_envelope=0.0))
    assert quiet.audio.shape == plain.audio.shape and np.isfinite(quiet.audio).all()


def test_retrieval_without_an_index_or_with_a_mismatched_one_is_refused(trained):
    from svc_core.errors import BadInputError, IncompatibleError
    from svc_core.retrieval import build_voice_index

    model, params = trained["model"], trained["params"]
    x = synth.tone(230.0, 1.0, 44100, amp=0.3)
    with pytest.raises(BadInputError, match="needs the voice's retrieval index"):
        convert_vocals(x, 44100, model, replace(params, retrieval_ratio=0.5))
    other = build_voice_index({"ppg": np.random.default_rng(0).standard_normal((100, 7))})
    with pytest.raises(IncompatibleError, match="build the index again"):
        convert_vocals(x, 44100, model, replace(params, retrieval_ratio=0.5), index=other)
