"""The whole engine on local files (``svc-studio pipeline``): songs in, mixed cover out —
with tiny official-format models, an interruption during training and a resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from svc_core.errors import Cancelled
from svc_core.pipeline import PipelineParams, run_pipeline
from tests.common import synth
from tests.common.tiny_assets import install_tiny_assets

SR = 44100


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    refs, ref_vocals = [], []
    for i, f0 in enumerate((262.0, 294.0)):
        mix, vocals, _ = synth.sung_song(7.0, base_f0=f0, seed=i)
        refs.append(synth.write(d / f"ref{i}.wav", mix, SR))
        ref_vocals.append(synth.write(d / f"ref{i}-vocals.flac", vocals, SR))
    mix, vocals, _ = synth.sung_song(4.5, base_f0=175.0, seed=7)  # lower than the references
    source = synth.write(d / "source.wav", mix, SR)
    source_vocals = synth.write(d / "source-vocals.wav", vocals, SR)
    models = d / "models"
    names = install_tiny_assets(models)
    return refs, source, models, names, ref_vocals, source_vocals


VOCALS = {"references_are_vocals": True, "source_is_vocals": True}


def params(names, **kw) -> PipelineParams:
    return PipelineParams(
        config="tiny",
        f0_method="harvest",
        ppg_model=names["ppg_model"],
        vec_model=names["vec_model"],
        max_steps=12,
        transpose=None,
        device="cpu",
        **kw,
    )


def test_pipeline_interrupted_in_training_then_resumed(songs, tmp_path):
    # vocals-only inputs (separation skipped): the tiny separation model's random "vocals"
    # would make the pitch checks meaningless; the CLI test below runs separation
    _, _, models, names, refs, source = songs
    work, out = tmp_path / "work", tmp_path / "cover.wav"
    seen: list[tuple[str, float]] = []

    def stop_mid_training() -> bool:
        return any(s == "train" and f > 0.3 for s, f in seen)

    with pytest.raises(Cancelled):
        run_pipeline(
            refs,
            source,
            out,
            work,
            models,
            params(names),
            progress=lambda s, f: seen.append((s, f)),
            should_stop=stop_mid_training,
        )
    ckpts = work / "train" / "tiny" / "checkpoints"
    assert (ckpts / "latest.pt").exists() and not out.exists()
    stages_seen = [s for s, _ in seen]
    assert stages_seen.index("separate") < stages_seen.index("slice") < stages_seen.index("train")

    seen.clear()
    result = run_pipeline(
        refs, source, out, work, models, params(names), progress=lambda s, f: seen.append((s, f))
    )
    assert {s for s, _ in seen} >= {"convert", "mix", "report"}
    # the mixed cover: the source's length, stereo 44.1 kHz, not silent, not clipped
    audio, sr = sf.read(out, always_2d=True)
    assert sr == SR and audio.shape == (int(4.5 * SR), 2)
    assert 20 * np.log10(np.sqrt(np.mean(audio**2))) > -40
    assert np.max(np.abs(audio)) < 0.9  # true-peak ceiling -1 dBTP
    rep = result.report
    assert rep["transpose"]["mode"] == "auto"
    # the source sits about 4 semitones below the references: auto shifts it up
    assert 1 <= rep["transpose"]["semitones"] <= 8
    assert rep["quality"]["pitch"] is not None and rep["verdicts"]
    assert json.loads((work / "report.json").read_text())["mix"]["true_peak_dbtp"] <= -1.0
    assert rep["train"]["step"] == 12
    metrics = [json.loads(x) for x in (work / "train/tiny/metrics.jsonl").read_text().splitlines()]
    assert max(m["step"] for m in metrics) == 12

    from svc_core.model.package import load_voice_package

    pkg = load_voice_package(result.voice_package)
    assert pkg.meta["features"]["f0_method"] == "harvest" and pkg.speaker.shape == (256,)


def test_pipeline_cli_runs_and_a_second_run_reuses_everything(songs, tmp_path):
    from svc_core.cli import engine

    refs, source, models, names, _, _ = songs
    out, work = tmp_path / "cover.mp3", tmp_path / "w"
    args = [
        "pipeline",
        "--reference",
        str(refs[0]),
        "--reference",
        str(refs[1]),
        "--source",
        str(source),
        "--out",
        str(out),
        "--work-dir",
        str(work),
        "--config",
        "tiny",
        "--max-steps",
        "6",
        "--f0",
        "harvest",
        "--ppg",
        names["ppg_model"],
        "--vec",
        names["vec_model"],
        "--transpose",
        "-2",
        "--models-dir",
        str(models),
        "--device",
        "cpu",
    ]
    first = CliRunner().invoke(engine, args)
    assert first.exit_code == 0, first.output
    assert sf.info(str(out)).format == "MP3"
    stamp = (work / "voice.zip").stat().st_mtime_ns, (work / "dataset/manifest.json").read_text()
    second = CliRunner().invoke(engine, args)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["transpose"]["semitones"] == -2
    # preprocessing reused every slice: the manifest is the same
    assert (work / "dataset/manifest.json").read_text() == stamp[1]

    # the stage commands on the pipeline's files: package a checkpoint, inspect, convert
    runner = CliRunner()
    pkg = tmp_path / "again.zip"
    res = runner.invoke(
        engine,
        [
            "package",
            "export",
            str(work / "train/tiny/checkpoints/latest.pt"),
            str(pkg),
            "--speaker",
            str(work / "dataset/speaker.npy"),
            "--dataset",
            str(work / "dataset"),
            "--name",
            "Again",
        ],
    )
    assert res.exit_code == 0, res.output
    info = runner.invoke(engine, ["package", "info", str(pkg)])
    assert info.exit_code == 0 and json.loads(info.stdout)["meta"]["voice"] == "Again"
    conv = runner.invoke(
        engine,
        [
            "convert",
            str(source),
            str(tmp_path / "conv"),
            "--voice",
            str(pkg),
            "--transpose",
            "3",
            "--models-dir",
            str(models),
            "--device",
            "cpu",
        ],
    )
    assert conv.exit_code == 0, conv.output
    assert json.loads(conv.stdout)["transpose"]["semitones"] == 3
    assert sf.info(str(tmp_path / "conv/vocals.wav")).frames == sf.info(str(source)).frames
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    res = runner.invoke(engine, ["package", "info", str(bad)])
    assert res.exit_code != 0 and "Error" in res.output


def test_pipeline_cli_missing_model_names_the_fetch_command(songs, tmp_path):
    from svc_core.cli import engine

    refs, source, *_ = songs
    res = CliRunner().invoke(
        engine,
        [
            "pipeline",
            "--reference",
            str(refs[0]),
            "--source",
            str(source),
            "--out",
            str(tmp_path / "o.wav"),
            "--work-dir",
            str(tmp_path / "w"),
            "--models-dir",
            str(tmp_path / "empty"),
            "--config",
            "tiny",
            "--max-steps",
            "1",
        ],
    )
    assert res.exit_code != 0
    assert "svc-studio assets pull mdx-voc-ft" in res.output
