"""GE2E speaker embeddings (Resemblyzer's bundled weights) on espeak-ng speech.

Measured on this machine with Resemblyzer 0.1.4 and the default energy trim (cosine
similarity, 3 sentences per voice): the same espeak voice across different sentences scored
at least 0.85 (default voice) and 0.90 (``en+Annie``); the default voice against ``en+Annie``
at most 0.73. Pitch alone (``-p 10`` vs ``-p 50``) is *not* a different speaker for GE2E
(0.97), so the tests contrast voice variants, not pitches.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from svc_core.errors import BadAudioError, BadInputError, Cancelled, IncompatibleError
from svc_core.speaker import (
    SPK_DIM,
    SpeakerParams,
    centroid,
    cosine,
    load_spk,
    mix_speakers,
    save_spk,
    speaker_embedding,
    speaker_embeddings,
    voice_encoder,
)
from tests.common import synth

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "Please call Stella and ask her to bring these things with her from the store.",
]
OTHER_VOICE = "en+Annie"  # espeak-ng variant: a female voice, far from the default male one


def espeak_voice(text: str, path: Path, voice: str) -> Path:
    """``tests.common.synth.espeak_speech`` has no voice option; the variant needs ``-v``."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


def read(path: Path) -> tuple[np.ndarray, int]:
    audio, sr = sf.read(path, dtype="float32")
    return audio, sr


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """{"same": [3 utterances of the default voice], "other": [3 of en+Annie]}, 22.05 kHz."""
    d = tmp_path_factory.mktemp("speech")
    same = [read(synth.espeak_speech(t, d / f"same{i}.wav")) for i, t in enumerate(TEXTS)]
    other = [read(espeak_voice(t, d / f"other{i}.wav", OTHER_VOICE)) for i, t in enumerate(TEXTS)]
    return {"same": same, "other": other}


@pytest.fixture(scope="module")
def embeds(speech):
    return {k: [speaker_embedding(a, sr) for a, sr in v] for k, v in speech.items()}


def test_embedding_shape_norm_dtype(embeds):
    for emb in embeds["same"] + embeds["other"]:
        assert emb.shape == (SPK_DIM,) and emb.dtype == np.float32
        assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
        assert np.all(emb >= 0)  # GE2E ends in a ReLU


def test_same_speaker_more_similar_than_other_voice(embeds):
    same, other = embeds["same"], embeds["other"]
    within = [cosine(same[i], same[j]) for i in range(3) for j in range(i + 1, 3)]
    within += [cosine(other[i], other[j]) for i in range(3) for j in range(i + 1, 3)]
    across = [cosine(a, b) for a in same for b in other]
    assert min(within) > max(across) + 0.05, (within, across)
    # The centroid of two utterances identifies the third utterance's speaker.
    c_same, c_other = centroid(same[:2]), centroid(other[:2])
    assert cosine(same[2], c_same) > cosine(same[2], c_other) + 0.05
    assert cosine(other[2], c_other) > cosine(other[2], c_same) + 0.05


def test_embedding_is_stable_across_rate_and_channels(speech, embeds):
    from svc_core.audio.dsp import resample

    audio, sr = speech["same"][0]
    stereo_44k = np.stack([resample(audio, sr, 44100)] * 2)
    emb = speaker_embedding(stereo_44k, 44100)
    assert cosine(emb, embeds["same"][0]) > 0.98


def test_encoder_loaded_once():
    assert voice_encoder("cpu") is voice_encoder("cpu")


def test_silent_and_short_audio(speech):
    with pytest.raises(BadAudioError, match="silent"):
        speaker_embedding(np.zeros(32000, np.float32), 16000)
    with pytest.raises(BadAudioError, match="empty"):
        speaker_embedding(np.zeros(0, np.float32), 16000)
    with pytest.raises(BadAudioError, match="NaN"):
        speaker_embedding(np.full(16000, np.nan, np.float32), 16000)
    audio, sr = speech["same"][0]
    with pytest.raises(BadAudioError, match="Too little voice"):
        speaker_embedding(audio[: int(0.2 * sr)], sr)
    # A mostly-silent slice: trimming strips the silence; what is left still embeds.
    padded = np.concatenate([np.zeros(3 * sr, np.float32), audio, np.zeros(3 * sr, np.float32)])
    same = speaker_embedding(audio, sr)
    assert cosine(speaker_embedding(padded, sr), same) > 0.95


def test_sung_tone_survives_default_trim_but_not_speech_vad():
    """webrtcvad (Resemblyzer's preprocess_wav) drops some sustained tones entirely.

    Measured: of 3-s vibrato tones at 110/220/440/880 Hz with 1–8 harmonics, webrtcvad kept
    either all or none (e.g. none of a 110 Hz tone with 3 harmonics), so a speech VAD is no
    silence detector for singing.
    """
    sr = 22050
    tone = synth.tone(110.0, 3.0, sr, amp=0.3, harmonics=3, vibrato_hz=5.5, vibrato_cents=60)
    emb = speaker_embedding(tone, sr)
    assert emb.shape == (SPK_DIM,) and np.isfinite(emb).all()
    with pytest.raises(BadAudioError, match="Too little"):
        speaker_embedding(tone, sr, SpeakerParams(trim="vad"))
    with pytest.raises(BadInputError, match="trim"):
        speaker_embedding(tone, sr, SpeakerParams(trim="magic"))


def test_speaker_embeddings_skips_unusable(speech):
    (a, sr), (b, _) = speech["same"][:2]
    slices = [a, np.zeros(sr, np.float32), b]
    seen = []
    embs, kept = speaker_embeddings(slices, sr, progress=lambda s, f: seen.append(f))
    assert embs.shape == (2, SPK_DIM) and kept == [0, 2]
    assert seen[-1] == pytest.approx(1.0)
    with pytest.raises(BadAudioError):
        speaker_embeddings(slices, sr, skip_unusable=False)
    with pytest.raises(BadAudioError, match="None of the slices"):
        speaker_embeddings([np.zeros(sr, np.float32)], sr)
    with pytest.raises(Cancelled):
        speaker_embeddings(slices, sr, should_stop=lambda: True)


def test_centroid_cosine_mix_math():
    rng = np.random.default_rng(0)
    a, b = rng.random(SPK_DIM).astype(np.float32), rng.random(SPK_DIM).astype(np.float32)
    c = centroid(np.stack([a, b]))
    ref = (a + b) / 2
    np.testing.assert_allclose(c, ref / np.linalg.norm(ref), rtol=1e-5)
    assert cosine(a, a) == pytest.approx(1.0) and cosine(a, -a) == pytest.approx(-1.0)
    np.testing.assert_allclose(mix_speakers(a, b, 0.0), a / np.linalg.norm(a), rtol=1e-5)
    np.testing.assert_allclose(mix_speakers(a, b, 1.0), b / np.linalg.norm(b), rtol=1e-5)
    m = mix_speakers(a, b, 0.5)
    assert np.linalg.norm(m) == pytest.approx(1.0, abs=1e-5)
    assert cosine(m, a) == pytest.approx(cosine(m, b), abs=1e-5)  # halfway between unit vectors
    with pytest.raises(BadInputError):
        mix_speakers(a, b, 1.5)
    with pytest.raises(BadInputError):
        centroid(np.zeros((0, SPK_DIM)))
    with pytest.raises(BadInputError):
        centroid(np.zeros((3, 128)))
    with pytest.raises(BadInputError):
        cosine(a, np.zeros(SPK_DIM))


def test_save_load_round_trip_and_bad_files(tmp_path, embeds):
    c = centroid(embeds["same"])
    path = save_spk(tmp_path / "voices" / "alice.spk.npy", c)
    loaded = load_spk(path)
    assert loaded.dtype == np.float32 and loaded.shape == (SPK_DIM,)
    np.testing.assert_array_equal(loaded, c)
    # so-vits-svc 5.0's speaker0.spk.npy: a plain (not normalised) float mean is accepted.
    np.save(tmp_path / "speaker0.spk.npy", (c * 0.7).astype(np.float64))
    assert load_spk(tmp_path / "speaker0.spk.npy").dtype == np.float32

    with pytest.raises(BadInputError, match="does not exist"):
        load_spk(tmp_path / "missing.spk.npy")
    (tmp_path / "junk.spk.npy").write_bytes(b"hello")
    with pytest.raises(IncompatibleError, match="not a speaker embedding"):
        load_spk(tmp_path / "junk.spk.npy")
    cases = {
        "shape": np.zeros((2, SPK_DIM), np.float32) + 0.1,
        "floating": np.arange(SPK_DIM, dtype=np.int64),
        "NaN": np.full(SPK_DIM, np.nan, np.float32),
        "zeros": np.zeros(SPK_DIM, np.float32),
    }
    for what, arr in cases.items():
        np.save(tmp_path / f"{what}.npy", arr)
        with pytest.raises(IncompatibleError, match=what):
            load_spk(tmp_path / f"{what}.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(IncompatibleError):
        load_spk(tmp_path / "obj.npy")
    with pytest.raises(BadInputError):
        save_spk(tmp_path / "bad.spk.npy", np.ones(10))


def test_speaker_cli(tmp_path, speech):
    from svc_core.cli import engine

    files = []
    for i, (audio, sr) in enumerate(speech["same"]):
        files.append(synth.write(tmp_path / f"s{i}.wav", audio, sr))
    files.append(synth.write(tmp_path / "quiet.wav", np.zeros(22050, np.float32), 22050))
    out = tmp_path / "alice.spk.npy"
    res = CliRunner().invoke(engine, ["speaker", *map(str, files), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped quiet.wav" in res.output and "centroid of 3 file(s)" in res.output
    emb = load_spk(out)
    assert np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
    res = CliRunner().invoke(engine, ["speaker", str(files[-1]), "--out", str(out)])
    assert res.exit_code != 0 and "No file had enough voice" in res.output
