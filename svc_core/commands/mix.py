"""``svc-studio mix``: converted vocals over an instrumental, loudness-matched and limited."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("mix")
@click.argument("vocals", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--instrumental",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The song's instrumental (omit for vocals only).",
)
@click.option(
    "--original-vocals",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The source song's original vocals: the converted vocals get their loudness.",
)
@click.option("--vocal-gain", type=float, default=0.0, show_default=True, help="dB.")
@click.option("--reverb", type=float, default=0.0, show_default=True, help="Wet level 0..1.")
@click.option(
    "--transpose-instrumental",
    type=float,
    default=0.0,
    show_default=True,
    help="Semitones (use the vocals' transpose to stay in tune).",
)
@click.option("--ceiling", type=float, default=-1.0, show_default=True, help="True peak, dBTP.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["wav16", "wav24", "flac", "mp3"]),
    default=None,
    help="Default: from OUT's extension (.wav → wav16).",
)
def mix_cmd(
    vocals: Path,
    out: Path,
    instrumental: Path | None,
    original_vocals: Path | None,
    vocal_gain: float,
    reverb: float,
    transpose_instrumental: float,
    ceiling: float,
    fmt: str | None,
) -> None:
    """Mix VOCALS (any rate) over --instrumental into OUT at 44.1 kHz stereo."""
    from svc_core.errors import SvcError
    from svc_core.mix import MixParams, mix_files

    fmt = fmt or {".flac": "flac", ".mp3": "mp3"}.get(out.suffix.lower(), "wav16")
    try:
        params = MixParams(
            vocal_gain_db=vocal_gain,
            reverb_wet=reverb,
            transpose_instrumental=transpose_instrumental,
            ceiling_dbtp=ceiling,
            output_format=fmt,
        )
        report = mix_files(vocals, instrumental, out, params, reference_vocals=original_vocals)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report.to_dict(), indent=2))
