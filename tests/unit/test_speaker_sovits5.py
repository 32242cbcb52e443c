"""so-vits-svc 5.0's LSTM speaker encoder against 5.0's own numbers (tests/data/sovits5/speaker).

The golden arrays were computed by 5.0's code with random weights rebuilt from the case's
recipe (``tests.sovits5_golden.write_speaker_encoder``). Tolerance: 1e-4 max abs for vectors
(FORMAT.md); the mel and the trimmed length are compared at the same tolerance / exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from svc_core.errors import BadAudioError, BadInputError, IncompatibleError
from svc_core.speaker_sovits5 import (
    Sovits5SpeakerEncoder,
    embed_mel,
    load_sovits5_speaker_encoder,
    plain_mean,
    sovits5_embedding,
    sovits5_embeddings,
    sovits5_mel,
    sovits5_prepare_wav,
    sovits5_singer_vector,
)
from tests.common.sovits5_golden import DATA, state_dict, write_speaker_encoder

TOL = 1e-4  # max abs difference, vectors and mel (FORMAT.md "Tolerance")
CASE = DATA / "speaker"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(CASE / "golden.npz"))


@pytest.fixture(scope="module")
def files(golden) -> list[str]:
    return [str(f) for f in golden["files"]]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """5.0's ``best_model.pth.tar`` layout, ``{"model": state_dict}``."""
    return write_speaker_encoder(tmp_path_factory.mktemp("speaker-encoder"))


@pytest.fixture(scope="module")
def encoder(model_file) -> Sovits5SpeakerEncoder:
    return load_sovits5_speaker_encoder(model_file)


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


# --- the front end --------------------------------------------------------------------------


def test_trimmed_length_and_mel_equal_5_0(golden, files):
    for f in files:
        wav = sovits5_prepare_wav(CASE / f)
        assert wav.dtype == np.float32 and wav.ndim == 1
        assert wav.shape[0] == int(golden[f"{f}/trimmed_len"]), f
        assert float(np.max(np.abs(wav))) == pytest.approx(0.95, abs=1e-6)
        mel = sovits5_mel(CASE / f)
        want = golden[f"{f}/mel"]
        assert mel.dtype == np.float32 and mel.shape == want.shape, f
        assert _max_diff(mel, want) <= TOL, f
        assert mel.min() >= -4.0 and mel.max() <= 4.0


def test_array_input_equals_file_input(files):
    path = CASE / files[1]
    audio, sr = sf.read(path, dtype="float32")
    assert sr == 16000
    from_file = sovits5_mel(path)
    np.testing.assert_array_equal(sovits5_mel(audio, sr), from_file)
    # [C, T] with identical channels: the channel mean is the mono signal
    np.testing.assert_array_equal(sovits5_mel(np.stack([audio, audio]), sr), from_file)
    with pytest.raises(BadInputError, match="sample rate"):
        sovits5_mel(audio)


# --- the encoder ------------------------------------------------------------------------------


def test_embeddings_and_mean_equal_5_0(golden, files, encoder):
    vecs = []
    for f in files:
        vec = sovits5_embedding(CASE / f, encoder)
        assert vec.shape == (256,) and vec.dtype == np.float32
        assert _max_diff(vec, golden[f"{f}/embed"]) <= TOL, f
        assert np.linalg.norm(vec) <= 1.0 + 1e-6  # a mean of unit vectors
        vecs.append(vec)
    # the singer: the plain mean (not re-normalised), as preprocess_speaker_ave.py
    assert _max_diff(plain_mean(vecs), golden["mean"]) <= TOL
    singer = sovits5_singer_vector([CASE / f for f in files], encoder)
    assert _max_diff(singer, golden["mean"]) <= TOL
    assert np.linalg.norm(singer) < 1.0


def test_embedding_from_golden_mel(golden, files, encoder):
    """Step 4 alone: 5.0's mel in, 5.0's vector out (short file: all 80 frames per window)."""
    for f in files:
        assert _max_diff(embed_mel(encoder, golden[f"{f}/mel"]), golden[f"{f}/embed"]) <= TOL
    with pytest.raises(BadInputError, match=r"\[frames, 80\]"):
        embed_mel(encoder, np.zeros((10, 81), np.float32))


def test_encoder_path_accepted_and_cached(model_file, encoder, files, golden):
    assert load_sovits5_speaker_encoder(model_file) is encoder
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training
    vec = sovits5_embedding(CASE / files[0], model_file)  # a path: loaded through the cache
    assert _max_diff(vec, golden[f"{files[0]}/embed"]) <= TOL


def test_cache_reloads_a_changed_file(tmp_path):
    path = write_speaker_encoder(tmp_path)
    first = load_sovits5_speaker_encoder(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = load_sovits5_speaker_encoder(path)
    assert second is not first
    assert load_sovits5_speaker_encoder(path) is second


def test_bare_state_dict_is_accepted(tmp_path):
    path = tmp_path / "bare.pth"
    torch.save(state_dict("speaker", "speaker"), path)
    assert isinstance(load_sovits5_speaker_encoder(path), Sovits5SpeakerEncoder)


# --- refusals ---------------------------------------------------------------------------------


def test_wrong_state_dict_is_refused_naming_what_differs(tmp_path):
    sd = state_dict("speaker", "speaker")

    renamed = dict(sd)
    renamed["layers.1.lstm.weight_ih"] = renamed.pop("layers.1.lstm.weight_ih_l0")
    torch.save({"model": renamed}, tmp_path / "renamed.pth.tar")
    with pytest.raises(IncompatibleError) as info:
        load_sovits5_speaker_encoder(tmp_path / "renamed.pth.tar")
    msg = str(info.value)
    assert "missing keys: layers.1.lstm.weight_ih_l0" in msg
    assert "unexpected keys: layers.1.lstm.weight_ih" in msg

    smaller = dict(sd)
    smaller["layers.0.linear.weight"] = torch.zeros(128, 768)
    torch.save({"model": smaller}, tmp_path / "shape.pth.tar")
    with pytest.raises(
        IncompatibleError, match=r"layers\.0\.linear\.weight has shape \[128, 768\]"
    ):
        load_sovits5_speaker_encoder(tmp_path / "shape.pth.tar")

    # a so-vits-svc model file, not the speaker encoder
    torch.save({"model_g": {"emb_g.weight": torch.zeros(256, 256)}}, tmp_path / "g.pth")
    with pytest.raises(IncompatibleError, match="missing keys: layers.0.lstm.weight_ih_l0"):
        load_sovits5_speaker_encoder(tmp_path / "g.pth")

    (tmp_path / "junk.pth.tar").write_bytes(b"<!DOCTYPE html><html>quota exceeded</html>")
    with pytest.raises(IncompatibleError, match="could not be read"):
        load_sovits5_speaker_encoder(tmp_path / "junk.pth.tar")

    with pytest.raises(BadInputError, match="does not exist"):
        load_sovits5_speaker_encoder(tmp_path / "nope.pth.tar")


def test_silent_short_and_unreadable_audio_are_plain_errors(tmp_path, encoder, files):
    sr = 16000
    with pytest.raises(BadAudioError, match="silent"):
        sovits5_embedding(np.zeros(sr * 2, np.float32), encoder, sr)
    with pytest.raises(BadAudioError, match="silent"):
        sovits5_embedding(np.full(sr, 1e-6, np.float32), encoder, sr)
    rng = np.random.default_rng(0)
    with pytest.raises(BadAudioError, match="Too little sound"):
        sovits5_embedding(0.5 * rng.standard_normal(800).astype(np.float32), encoder, sr)
    with pytest.raises(BadAudioError, match="empty"):
        sovits5_embedding(np.zeros(0, np.float32), encoder, sr)
    with pytest.raises(BadAudioError, match="NaN"):
        sovits5_embedding(np.full(sr, np.nan, np.float32), encoder, sr)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    with pytest.raises(BadAudioError):
        sovits5_embedding(not_audio, encoder)

    # several files: skipping the unusable ones keeps the rest
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(sr, np.float32), sr)
    items = [CASE / files[0], silent]
    with pytest.raises(BadAudioError):
        sovits5_embeddings(items, encoder)
    vecs, kept = sovits5_embeddings(items, encoder, skip_unusable=True)
    assert kept == [0] and vecs.shape == (1, 256)
    with pytest.raises(BadAudioError, match="None of the files"):
        sovits5_singer_vector([silent], encoder, skip_unusable=True)


# --- the command ------------------------------------------------------------------------------


def _speaker(args: list[str], env: dict[str, str] | None = None):
    from svc_core.cli import engine

    return CliRunner().invoke(engine, ["speaker", *args], env=env)


def test_cli_one_file_and_mean(tmp_path, model_file, golden, files):
    one = tmp_path / "one.spk.npy"
    res = _speaker(
        ["--encoder", "sovits5", "--encoder-model", str(model_file), str(CASE / files[0])]
        + ["--out", str(one)]
    )
    assert res.exit_code == 0, res.output
    got = np.load(one)
    assert got.dtype == np.float32 and got.shape == (256,)
    assert _max_diff(got, golden[f"{files[0]}/embed"]) <= TOL

    mean = tmp_path / "mean.spk.npy"
    res = _speaker(
        ["--encoder", "sovits5", "--encoder-model", str(model_file)]
        + [str(CASE / f) for f in files]
        + ["--out", str(mean)]
    )
    assert res.exit_code == 0, res.output
    assert _max_diff(np.load(mean), golden["mean"]) <= TOL
    assert "mean of 3 file(s)" in res.output and "not re-normalised" in res.output


def test_cli_skips_silent_file_and_fails_when_none_left(tmp_path, model_file, golden, files):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    out = tmp_path / "x.spk.npy"
    base = ["--encoder", "sovits5", "--encoder-model", str(model_file)]
    res = _speaker([*base, str(CASE / files[0]), str(silent), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped silent.wav" in res.output
    assert _max_diff(np.load(out), golden[f"{files[0]}/embed"]) <= TOL

    res = _speaker([*base, str(silent), "--out", str(tmp_path / "y.spk.npy")])
    assert res.exit_code == 1 and "No file had enough sound" in res.output
    assert not (tmp_path / "y.spk.npy").exists()


def test_cli_wrong_model_file_is_refused(tmp_path, files):
    bad = tmp_path / "bad.pth.tar"
    torch.save({"model": {"layers.0.linear.weight": torch.zeros(256, 768)}}, bad)
    res = _speaker(
        ["--encoder", "sovits5", "--encoder-model", str(bad), str(CASE / files[0])]
        + ["--out", str(tmp_path / "o.npy")]
    )
    assert res.exit_code == 1 and "missing keys: layers.0.lstm.weight_ih_l0" in res.output


def test_cli_uses_the_registry_asset(tmp_path, model_file, golden, files):
    models = tmp_path / "models"
    env = {"SVC_MODELS_DIR": str(models)}
    out = tmp_path / "a.spk.npy"
    args = ["--encoder", "sovits5", str(CASE / files[0]), "--out", str(out)]

    res = _speaker(args, env)
    assert res.exit_code == 1
    assert "asset 'sovits5-speaker' is not installed" in res.output
    assert "`svc-studio assets pull sovits5-speaker`" in res.output
    assert not out.exists()

    from svc_core.commands.assets import assets

    res = CliRunner().invoke(assets, ["import", "sovits5-speaker", str(model_file)], env=env)
    assert res.exit_code == 0, res.output
    assert (models / "best_model.pth.tar").is_file()

    res = _speaker(args, env)
    assert res.exit_code == 0, res.output
    assert _max_diff(np.load(out), golden[f"{files[0]}/embed"]) <= TOL

    # --models-dir wins over the environment
    res = _speaker([*args, "--models-dir", str(tmp_path / "empty")], env)
    assert res.exit_code == 1 and "svc-studio assets pull sovits5-speaker" in res.output


def test_cli_encoder_model_needs_sovits5(tmp_path, model_file, files):
    res = _speaker(
        ["--encoder-model", str(model_file), str(CASE / files[0])]
        + ["--out", str(tmp_path / "o.npy")]
    )
    assert res.exit_code == 2 and "--encoder sovits5" in res.output
