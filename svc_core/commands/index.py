"""``svc-studio index``: a voice's retrieval index (faiss) from its training features."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("index")
def index_cmd() -> None:
    """Build or inspect a voice's feature-retrieval index (.svcindex)."""


@index_cmd.command("build")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def build_cmd(dataset_dir: Path, out: Path) -> None:
    """Index the training features of a preprocessed DATASET_DIR into OUT (.svcindex)."""
    from svc_core.errors import SvcError
    from svc_core.retrieval import build_voice_index, dataset_features, save_voice_index

    try:
        index = build_voice_index(dataset_features(dataset_dir))
        save_voice_index(index, out)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"index": str(out), **index.info, "dims": index.dims()}, indent=2))


@index_cmd.command("info")
@click.argument("index_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info_cmd(index_file: Path) -> None:
    """Check INDEX_FILE with the real loader and print what it holds."""
    from svc_core.errors import SvcError
    from svc_core.retrieval import load_voice_index

    try:
        index = load_voice_index(index_file)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({**index.info, "dims": index.dims()}, indent=2))
