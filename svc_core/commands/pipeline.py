"""``svc-studio pipeline``: reference songs + a source song → a mixed cover and a report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from svc_core.commands.assets import models_dir_option, resolve_models_dir
from svc_core.commands.convert import _transpose


@click.command("pipeline")
@click.option(
    "--reference",
    "references",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A song of the target singer (repeat, or list several after one flag).",
)
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The song to convert.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The mixed cover (.wav, .flac or .mp3).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where stages keep their results [default: ./svc-work/<inputs hash>]; "
    "run the same command again to resume.",
)
@click.option("--config", "config_name", default="base", show_default=True)
@click.option("--max-steps", type=click.IntRange(min=1))
@click.option("--max-epochs", type=click.IntRange(min=1))
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0.1),
    help="Training time budget [default: 120 when no other limit is given].",
)
@click.option(
    "--base-model",
    default=None,
    help="Fine-tune from this asset or model file (so-vits-svc 5.0's pretrain, checkpoint or "
    "export; an svc-studio checkpoint or voice package), or 'none' for a run from scratch "
    "[default: 5.0's pretrain when installed].",
)
@click.option(
    "--speaker-encoder",
    type=click.Choice(["ge2e", "sovits5"]),
    default=None,
    help="Speaker vectors the voice is conditioned on [default: sovits5 (5.0's LSTM) when "
    "installed; required by 5.0's pretrain].",
)
@click.option("--f0", "f0_method", default=None)
@click.option("--ppg", default="whisper-large-v2", show_default=True, help="'none' to skip.")
@click.option("--vec", default="hubert-soft", show_default=True, help="'none' to skip.")
@click.option("--separation-model", default=None)
@click.option("--dereverb", is_flag=True, help="Remove reverb/echo from the vocals first.")
@click.option("--references-are-vocals", is_flag=True, help="Skip separating the references.")
@click.option("--source-is-vocals", is_flag=True, help="Skip separating the source.")
@click.option("--transpose", default="0", show_default=True, help="Semitones or 'auto'.")
@click.option("--vocal-gain", type=float, default=0.0, show_default=True)
@click.option("--reverb", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@models_dir_option
def pipeline_cmd(
    references,
    source,
    out,
    work_dir,
    config_name,
    max_steps,
    max_epochs,
    max_minutes,
    base_model,
    speaker_encoder,
    f0_method,
    ppg,
    vec,
    separation_model,
    dereverb,
    references_are_vocals,
    source_is_vocals,
    transpose,
    vocal_gain,
    reverb,
    device,
    models_dir,
) -> None:
    """Separate, slice, preprocess, train, convert, mix and report in one go."""
    from svc_core.commands._progress import StageProgress
    from svc_core.errors import SvcError
    from svc_core.mix import MixParams
    from svc_core.pipeline import PipelineParams, run_pipeline
    from svc_core.utils import file_sha256

    if work_dir is None:
        h = hashlib.sha256()
        for p in (*references, source):
            h.update(file_sha256(p).encode())
        work_dir = Path("svc-work") / h.hexdigest()[:12]
    fmt = {".flac": "flac", ".mp3": "mp3"}.get(out.suffix.lower(), "wav16")
    bar = StageProgress()
    click.echo(f"work folder: {work_dir} (run the same command again to resume)", err=True)
    try:
        params = PipelineParams(
            config=config_name,
            f0_method=f0_method,
            ppg_model=None if ppg.lower() == "none" else ppg,
            vec_model=None if vec.lower() == "none" else vec,
            separation_model=separation_model,
            dereverb=dereverb,
            references_are_vocals=references_are_vocals,
            source_is_vocals=source_is_vocals,
            max_steps=max_steps,
            max_epochs=max_epochs,
            max_minutes=max_minutes,
            base_model=base_model,
            speaker_encoder=speaker_encoder,
            transpose=_transpose(transpose),
            mix=MixParams(vocal_gain_db=vocal_gain, reverb_wet=reverb, output_format=fmt),
            device=device,
        )
        result = run_pipeline(
            list(references),
            source,
            out,
            work_dir,
            resolve_models_dir(models_dir),
            params,
            progress=bar,
        )
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    for line in result.report["verdicts"]:
        click.echo(f"- {line}", err=True)
    click.echo(
        json.dumps(
            {
                "mix": str(result.mix),
                "voice_package": str(result.voice_package),
                "speaker": str(result.speaker),
                "report": str(work_dir / "report.json"),
                "transpose": result.report["transpose"],
            },
            indent=2,
        )
    )
