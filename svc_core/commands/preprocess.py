"""``svc-studio preprocess``: slices → a voice's training dataset (features, .spk.npy)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from svc_core.commands.assets import models_dir_option, resolve_models_dir


@click.command("preprocess")
@click.argument("slices", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.argument("dataset_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_name",
    default="base",
    show_default=True,
    help="Model config (sets the sample rate and hop): base, tiny or a YAML file.",
)
@click.option(
    "--f0",
    "f0_method",
    default=None,
    help="F0 method [default: crepe-full on CUDA, crepe-tiny on CPU].",
)
@click.option(
    "--ppg",
    default="whisper-large-v2",
    show_default=True,
    help="Whisper asset name or .pt file; 'none' to skip PPG.",
)
@click.option(
    "--vec",
    default="hubert-soft",
    show_default=True,
    help="HuBERT-soft asset name or .pt file; 'none' to skip vec.",
)
@click.option(
    "--speaker-encoder",
    type=click.Choice(["ge2e", "sovits5"]),
    default="ge2e",
    show_default=True,
    help="Speaker vectors: GE2E (Resemblyzer) or so-vits-svc 5.0's LSTM encoder (needed to "
    "fine-tune 5.0's pretrain; asset sovits5-speaker or --speaker-model).",
)
@click.option(
    "--speaker-model",
    default=None,
    help="5.0's speaker encoder file (best_model.pth.tar) [default: asset sovits5-speaker].",
)
@click.option("--device", default="auto", show_default=True)
@models_dir_option
def preprocess_cmd(
    slices: tuple[Path, ...],
    dataset_dir: Path,
    config_name: str,
    f0_method: str | None,
    ppg: str,
    vec: str,
    speaker_encoder: str,
    speaker_model: str | None,
    device: str,
    models_dir: Path | None,
) -> None:
    """Compute F0, content features and speaker embeddings of SLICES (files or folders of
    WAVs) into DATASET_DIR; re-runs reuse what is already computed."""
    from svc_core.commands._progress import StageProgress
    from svc_core.errors import SvcError

    bar = StageProgress()
    try:
        result = build(
            slices,
            dataset_dir,
            config_name,
            f0_method,
            ppg,
            vec,
            device,
            resolve_models_dir(models_dir),
            bar,
            speaker_encoder=speaker_encoder,
            speaker_model=speaker_model,
        )
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    click.echo(
        json.dumps(
            {
                "dataset": str(result.dataset_dir),
                "slices": len(result.slices),
                "reused": result.reused,
                "skipped": result.skipped,
                "speaker": str(result.speaker_path),
            },
            indent=2,
        )
    )


def resolve_checkpoint(value: str, models_dir: Path) -> str | None:
    """An asset name (looked up in the models folder), a file path, or 'none'."""
    from svc_core.assets import asset_path

    if value.lower() == "none":
        return None
    if Path(value).is_file():
        return value
    return str(asset_path(value, models_dir))


def build(
    slices,
    dataset_dir,
    config_name,
    f0_method,
    ppg,
    vec,
    device,
    models_dir,
    progress,
    *,
    speaker_encoder: str = "ge2e",
    speaker_model: str | None = None,
):
    from svc_core.f0.base import recommended_method
    from svc_core.preprocess import build_dataset, params_for
    from svc_core.utils import resolve_device

    dev = resolve_device(device)
    files: list[Path] = []
    for p in slices:
        files += sorted(p.glob("*.wav")) if p.is_dir() else [p]
    params = params_for(
        config_name,
        f0_method=f0_method or recommended_method(dev != "cpu"),
        ppg_checkpoint=resolve_checkpoint(ppg, models_dir),
        vec_checkpoint=resolve_checkpoint(vec, models_dir),
        device=dev,
        speaker_encoder=speaker_encoder,
        speaker_model=(
            resolve_checkpoint(speaker_model or "sovits5-speaker", models_dir)
            if speaker_encoder == "sovits5"
            else None
        ),
    )
    return build_dataset(files, dataset_dir, params, progress)
