"""What a run starts from (svc_core.recipes) and the speaker vectors it trains on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from svc_core.assets import get_asset
from svc_core.errors import AssetMissingError, BadInputError
from svc_core.preprocess import build_dataset, params_for
from svc_core.recipes import SOVITS5_PRETRAIN, SOVITS5_SPEAKER, plan_start, resolve_base_model
from tests.common import sovits5_golden as G
from tests.common import synth
from tests.common.tiny_assets import install_tiny_assets

FIT = {"config": "base", "ppg_model": "whisper-large-v2", "vec_model": "hubert-soft"}


def _install(models: Path, *names: str) -> None:
    models.mkdir(parents=True, exist_ok=True)
    for name in names:
        (models / get_asset(name).filename).write_bytes(b"x")


def test_the_pretrain_is_the_default_when_installed_with_its_speaker_encoder(tmp_path):
    _install(tmp_path, SOVITS5_PRETRAIN, SOVITS5_SPEAKER)
    plan = plan_start(None, models_dir=tmp_path, **FIT)
    assert (plan.base_model, plan.speaker_encoder) == (SOVITS5_PRETRAIN, "sovits5")
    assert "5.0's pretrain" in plan.reason


def test_without_the_pretrain_the_run_starts_from_scratch_and_says_why(tmp_path):
    plan = plan_start(None, models_dir=tmp_path, **FIT)
    assert (plan.base_model, plan.speaker_encoder) == (None, "ge2e")
    assert "not installed" in plan.reason and "--preset sovits5" in plan.reason
    _install(tmp_path, SOVITS5_PRETRAIN)  # the pretrain without 5.0's speaker encoder
    plan = plan_start(None, models_dir=tmp_path, **FIT)
    assert plan.base_model is None and SOVITS5_SPEAKER in plan.reason
    with pytest.raises(AssetMissingError, match="assets pull sovits5-speaker"):
        plan_start(SOVITS5_PRETRAIN, models_dir=tmp_path, **FIT)


def test_content_features_or_sizes_that_do_not_fit_the_pretrain(tmp_path):
    _install(tmp_path, SOVITS5_PRETRAIN, SOVITS5_SPEAKER)
    plan = plan_start(None, models_dir=tmp_path, **{**FIT, "ppg_model": "whisper-small"})
    assert plan.base_model is None and "whisper-large-v2 PPG + hubert-soft" in plan.reason
    assert plan.speaker_encoder == "sovits5"  # installed: used from scratch too
    plan = plan_start(None, models_dir=tmp_path, **{**FIT, "config": "tiny"})
    assert plan.base_model is None and "'tiny' config" in plan.reason
    with pytest.raises(BadInputError, match="cannot fine-tune"):
        plan_start(SOVITS5_PRETRAIN, models_dir=tmp_path, **{**FIT, "vec_model": None})
    with pytest.raises(BadInputError, match="needs speaker_encoder sovits5"):
        plan_start(None, models_dir=tmp_path, speaker_encoder="ge2e", **FIT)


def test_explicit_scratch_and_other_base_models(tmp_path):
    _install(tmp_path, SOVITS5_PRETRAIN, SOVITS5_SPEAKER)
    plan = plan_start("none", models_dir=tmp_path, speaker_encoder="ge2e", **FIT)
    assert (plan.base_model, plan.speaker_encoder) == (None, "ge2e")
    assert resolve_base_model("none", tmp_path) is None
    assert resolve_base_model(SOVITS5_PRETRAIN, tmp_path).name == "sovits5.0.pretrain.pth"
    mine = tmp_path / "mine.zip"
    mine.write_bytes(b"x")
    with pytest.raises(BadInputError, match="not an asset"):  # the web API names assets only
        resolve_base_model(str(mine), tmp_path)
    assert resolve_base_model(str(mine), tmp_path, allow_files=True) == mine
    with pytest.raises(BadInputError, match="unknown speaker encoder"):
        plan_start(None, models_dir=tmp_path, speaker_encoder="x", **FIT)


def test_dataset_with_5_0s_speaker_encoder(tmp_path):
    """Per-slice 5.0 vectors, the voice's vector = their plain mean (5.0's average), and a
    GE2E centroid beside it for the quality report."""
    from svc_core.speaker import SpeakerParams, speaker_embedding
    from svc_core.speaker_sovits5 import sovits5_embedding

    models = tmp_path / "models"
    names = install_tiny_assets(models)
    encoder = G.write_speaker_encoder(models)
    slices = []
    for i, f0 in enumerate((220.0, 262.0, 330.0)):
        audio = synth.tone(f0, 1.2, sr=32000, harmonics=6, vibrato_hz=5.0, vibrato_cents=30.0)
        slices.append(synth.write(tmp_path / f"s{i}.wav", audio, 32000))
    params = params_for(
        "tiny",
        f0_method="harvest",
        ppg_checkpoint=str(models / get_asset(names["ppg_model"]).filename),
        vec_checkpoint=str(models / get_asset(names["vec_model"]).filename),
        speaker_encoder="sovits5",
        speaker_model=str(encoder),
    )
    result = build_dataset(slices, tmp_path / "ds", params)
    spk, judge = np.load(result.speaker_path), np.load(result.judge_path)
    per_slice = [np.load(tmp_path / "ds" / e.spk) for e in result.manifest.slices]
    np.testing.assert_allclose(spk, np.mean(per_slice, axis=0), atol=1e-6)
    assert np.linalg.norm(spk) < 0.999  # a plain mean of unit vectors, not re-normalised
    from svc_core.audio.io import load_audio

    wav, sr = load_audio(slices[0])
    # the slice was loudness-normalised before embedding; 5.0's peak normalisation makes
    # its vector independent of the level
    np.testing.assert_allclose(sovits5_embedding(wav, encoder, sr), per_slice[0], atol=1e-3)
    assert abs(np.linalg.norm(judge) - 1.0) < 1e-5  # GE2E centroid
    assert np.all(judge >= 0)
    ge2e = speaker_embedding(wav, sr, SpeakerParams())
    assert float(np.dot(ge2e, judge)) > 0.5
