"""Typed job parameters (app/core/params.py) and the one resolver that turns them plus the
worker's device into engine parameters (svc_core/recipes.py), used by the workers and by
`svc-studio pipeline` alike."""

from __future__ import annotations

from dataclasses import fields

import pytest
from pydantic import ValidationError

from app.core.names import PIPELINES, JobKind
from app.core.params import (
    PARAMS,
    ConversionOptions,
    ConversionParams,
    IndexRequest,
    IngestParams,
    ModelDownloadParams,
    RemixParams,
    RemixRequest,
    SlicerOptions,
    TrainRequest,
    VoiceImportParams,
    job_params,
    parse_params,
)
from svc_core import recipes

EXAMPLES = {
    JobKind.ingest: IngestParams(track_ids=["t1", "t2"]),
    JobKind.voice: TrainRequest(config="tiny", f0_method="harvest", max_steps=3),
    JobKind.conversion: ConversionParams(
        options=ConversionOptions(transpose="auto", protect=0.2), track_ids=["t"]
    ),
    JobKind.remix: RemixParams(options=RemixRequest(output_format="flac")),
    JobKind.voice_import: VoiceImportParams(
        filename="a.pth", sha256="0" * 64, storage_key="k", format="sovits5", speaker_key="s"
    ),
    JobKind.model_download: ModelDownloadParams(names=["hubert-soft", "rmvpe"]),
    JobKind.voice_index: IndexRequest(dereverb=True, slicer=SlicerOptions(max_length_s=10)),
}


def test_every_job_kind_has_a_model_and_a_pipeline():
    assert set(PARAMS) == set(JobKind) == set(PIPELINES) == set(EXAMPLES)


@pytest.mark.parametrize("kind", list(JobKind))
def test_what_the_api_stores_the_worker_reads_back(kind):
    stored = job_params(kind, EXAMPLES[kind])
    assert parse_params(kind, stored) == EXAMPLES[kind]
    assert parse_params(kind.value, stored) == EXAMPLES[kind]


def test_a_model_of_another_kind_is_refused():
    with pytest.raises(TypeError, match="TrainRequest"):
        job_params(JobKind.voice, IngestParams(track_ids=["t"]))


def test_stored_parameters_are_validated_again():
    with pytest.raises(ValidationError):
        parse_params(JobKind.remix, {"options": {"output_format": "aiff"}})
    with pytest.raises(ValidationError):
        parse_params(JobKind.voice, {"sneaky": 1})
    with pytest.raises(ValidationError):
        parse_params(JobKind.ingest, {"track_ids": []})


def test_defaults_are_the_engines():
    """Written once: the request models take their defaults from the engine."""
    from svc_core.audio.slicer import SliceParams
    from svc_core.preprocess import PreprocessParams

    train = TrainRequest()
    assert (train.ppg_model, train.vec_model) == (
        recipes.DEFAULT_PPG_MODEL,
        recipes.DEFAULT_VEC_MODEL,
    )
    assert train.target_lufs == recipes.DEFAULT_TARGET_LUFS == PreprocessParams().target_lufs
    opts = ConversionOptions()
    assert opts.protect == recipes.DEFAULT_PROTECT
    assert opts.volume_envelope == recipes.DEFAULT_VOLUME_ENVELOPE
    engine = SliceParams()
    for name, value in SlicerOptions().model_dump().items():
        assert getattr(engine, name) == value, name
    assert {f.name for f in fields(SliceParams)} >= set(SlicerOptions.model_fields)


# --- the resolver -------------------------------------------------------------------------


def test_device_dependent_choices():
    assert recipes.choose_f0_method(None, cuda=False) == "fcpe"
    assert recipes.choose_f0_method(None, cuda=True) == "crepe-full"
    assert recipes.choose_f0_method("harvest", cuda=True) == "harvest"
    cpu = recipes.separation_params(None, cuda=False)
    gpu = recipes.separation_params(None, cuda=True)
    assert cpu.model != gpu.model and cpu.second_pass is None and cpu.input_kind == "mixture"
    asked = recipes.separation_params("mdx-kim-vocal-2", cuda=True, dereverb=True, vocals_only=True)
    assert asked.model == "mdx-kim-vocal-2" and asked.second_pass and asked.input_kind == "vocals"
    assert recipes.separation_params(None, cuda=False, max_duration_s=9.0).max_duration_s == 9.0


def test_retrieval_is_on_by_default_only_with_an_index():
    assert recipes.choose_retrieval_ratio(None, has_index=True) == recipes.DEFAULT_RETRIEVAL_RATIO
    assert recipes.choose_retrieval_ratio(None, has_index=False) == 0.0
    assert recipes.choose_retrieval_ratio(0.3, has_index=False) == 0.3


def test_features_and_the_engine_parameters_they_give(tmp_path):
    from tests.common.tiny_assets import install_tiny_assets

    install_tiny_assets(tmp_path)
    feats = recipes.choose_features(
        models_dir=tmp_path,
        cuda=False,
        config="tiny",
        ppg_model=None,
        vec_model="hubert-soft",
        base_model="none",
        speaker_encoder="ge2e",
    )
    assert feats.f0_method == "fcpe" and feats.speaker_encoder == "ge2e"
    assert feats.start["base_model"] is None
    assert recipes.Features.from_dict(feats.to_dict()) == feats
    # a voice stored by an earlier version (no target_lufs, no start) still reads
    old = {k: v for k, v in feats.to_dict().items() if k not in ("target_lufs", "start")}
    assert recipes.Features.from_dict(old).target_lufs == recipes.DEFAULT_TARGET_LUFS
    with pytest.raises(Exception, match="PPG model, a vec model or both"):
        recipes.choose_features(models_dir=tmp_path, cuda=False, ppg_model=None, vec_model=None)

    pp = recipes.preprocess_params(feats, models_dir=tmp_path, device="cpu")
    assert pp.f0.method == "fcpe" and pp.f0.device == "cpu" and pp.content.ppg_checkpoint is None
    assert pp.content.vec_checkpoint.endswith(".pt") and pp.target_lufs == feats.target_lufs
    cp = recipes.convert_params(
        feats, models_dir=tmp_path, device="cpu", has_index=True, transpose="auto", f0_method="dio"
    )
    assert cp.transpose is None and cp.f0.method == "dio"
    assert cp.retrieval_ratio == recipes.DEFAULT_RETRIEVAL_RATIO
    assert cp.protect == recipes.DEFAULT_PROTECT
    fixed = recipes.convert_params(feats, models_dir=tmp_path, device="cpu", has_index=False)
    assert fixed.transpose == 0.0 and fixed.retrieval_ratio == 0.0 and fixed.f0.method == "fcpe"


def test_preflight_names_every_missing_model_and_nothing_installed(tmp_path):
    from tests.common.tiny_assets import install_tiny_assets

    empty = tmp_path / "empty"
    empty.mkdir()
    assert recipes.missing_for_training(empty) == ["whisper-large-v2", "hubert-soft", "mdx-voc-ft"]
    assert recipes.missing_for_training(empty, separate=False, f0_method="rmvpe") == [
        "whisper-large-v2",
        "hubert-soft",
        "rmvpe",
    ]
    assert "vr-deecho-dereverb" in recipes.missing_for_training(empty, dereverb=True)
    with pytest.raises(Exception, match="cannot fine-tune"):
        recipes.missing_for_training(empty, config="tiny", base_model=recipes.SOVITS5_PRETRAIN)
    # an explicit start that needs 5.0's pretrain and encoder: both named
    asked = recipes.missing_for_training(empty, base_model=recipes.SOVITS5_PRETRAIN)
    assert {recipes.SOVITS5_PRETRAIN, recipes.SOVITS5_SPEAKER} <= set(asked)

    names = install_tiny_assets(tmp_path / "models")
    models = tmp_path / "models"
    assert recipes.missing_for_training(models, ppg_model=names["ppg_model"]) == []
    assert recipes.missing_for_training(models) == ["whisper-large-v2"]
    voice = {"ppg_model": names["ppg_model"], "vec_model": "hubert-soft", "f0_method": "fcpe"}
    assert recipes.missing_for_conversion(models, voice) == []
    assert recipes.missing_for_conversion(models, voice, f0_method="rmvpe") == ["rmvpe"]
    assert recipes.missing_for_conversion(empty, voice, separate=False) == [
        names["ppg_model"],
        "hubert-soft",
    ]
    msg = recipes.missing_models_message("This training", ["a", "b"], models)
    assert "svc-studio assets pull a b" in msg
