"""``svc-studio ingest``: decode an audio file to a 44.1 kHz float WAV and print its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("ingest")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_wav", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--max-seconds",
    type=float,
    default=20 * 60.0,
    show_default=True,
    help="Refuse files longer than this.",
)
@click.option(
    "--min-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="Refuse files shorter than this.",
)
def ingest_cmd(src: Path, out_wav: Path, max_seconds: float, min_seconds: float) -> None:
    """Decode SRC (wav, flac, mp3, ogg, m4a, ...) to OUT_WAV and print its metadata as JSON."""
    from svc_core.errors import SvcError
    from svc_core.ingest import IngestParams, ingest_file

    params = IngestParams(max_duration_s=max_seconds, min_duration_s=min_seconds)
    try:
        result = ingest_file(src, out_wav, params)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result.to_dict(), indent=2))
