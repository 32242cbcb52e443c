"""``svc-studio separate``: split a song into vocals and instrumental (44.1 kHz float WAVs)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from svc_core.commands.assets import models_dir_option, resolve_models_dir


@click.command("separate")
@click.argument("song", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--model",
    default="mdx-voc-ft",
    show_default=True,
    help="Separation model: a registry name (see `svc-studio assets list --kind separation`) "
    "or a model file in the models folder.",
)
@click.option(
    "--second-pass",
    default=None,
    help="Model run over the vocals: vr-deecho-dereverb (reverb) or mdx-karaoke-2 (backing).",
)
@click.option(
    "--vocals-only", is_flag=True, help="SONG is already vocals: skip the main separation."
)
@click.option(
    "--overlap", type=float, default=0.25, show_default=True, help="MDX-Net window overlap."
)
@models_dir_option
def separate_cmd(
    song: Path,
    out_dir: Path,
    model: str,
    second_pass: str | None,
    vocals_only: bool,
    overlap: float,
    models_dir: Path | None,
) -> None:
    """Separate SONG into OUT_DIR/vocals.wav and OUT_DIR/instrumental.wav; print the result."""
    from svc_core.errors import SvcError
    from svc_core.separation import SeparationParams, separate

    params = SeparationParams(
        model=model,
        second_pass=second_pass,
        input_kind="vocals" if vocals_only else "mixture",
        overlap=overlap,
    )
    last = {"shown": -1}

    def progress(stage: str, fraction: float) -> None:
        pct = int(fraction * 100)
        if pct != last["shown"]:
            last["shown"] = pct
            click.echo(f"{stage}: {pct}%", err=True)

    try:
        result = separate(song, out_dir, params, resolve_models_dir(models_dir), progress)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result.to_dict(), indent=2))
