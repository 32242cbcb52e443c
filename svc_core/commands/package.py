"""``svc-studio package``: make and inspect voice packages (checkpoint + config + .spk.npy)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("package")
def package_cmd() -> None:
    """Export a trained checkpoint as a voice package, import a so-vits-svc 5.0 voice, or
    inspect a package."""


@package_cmd.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--speaker",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The singer's .spk.npy (a preprocessed dataset's speaker.npy).",
)
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The dataset it was trained on: its F0 method and content encoders are "
    "recorded so conversion reuses them.",
)
@click.option("--name", default="", help="The voice's name.")
def export_cmd(checkpoint: Path, out: Path, speaker: Path, dataset: Path | None, name: str) -> None:
    """Write OUT (.zip) from a training CHECKPOINT."""
    from svc_core.errors import SvcError
    from svc_core.train.package import export_voice_package

    meta: dict = {"voice": name}
    if dataset is not None:
        manifest = json.loads((dataset / "manifest.json").read_text("utf-8"))
        feats = (manifest.get("meta") or {}).get("features") or {}
        meta["features"] = {
            "f0_method": (feats.get("f0") or {}).get("method"),
            "ppg_model": Path(
                str((feats.get("content") or {}).get("ppg_checkpoint") or "")
            ).name.split(":")[0]
            or None,
            "vec_model": Path(
                str((feats.get("content") or {}).get("vec_checkpoint") or "")
            ).name.split(":")[0]
            or None,
        }
    try:
        path = export_voice_package(checkpoint, out, speaker, meta)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))


@package_cmd.command("import-sovits5")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("speaker", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--hparams",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The model's 5.0 config YAML, for files without hp_str [default: 5.0's base.yaml].",
)
@click.option(
    "--f0",
    "f0_method",
    default="crepe-full",
    show_default=True,
    help="F0 method conversions use by default (5.0 extracts with crepe).",
)
@click.option("--name", default="", help="The voice's name.")
def import_sovits5_cmd(
    model: Path, speaker: Path, out: Path, hparams: Path | None, f0_method: str, name: str
) -> None:
    """Turn a so-vits-svc 5.0 MODEL (export, checkpoint or pretrain) and its SPEAKER vector
    (e.g. speaker0.spk.npy) into a voice package OUT (.zip) that converts."""
    from svc_core.errors import SvcError
    from svc_core.f0.base import canonical_method
    from svc_core.train.package import import_sovits5_voice

    try:
        path = import_sovits5_voice(
            model,
            speaker,
            out,
            hparams=hparams,
            f0_method=canonical_method(f0_method),
            meta={"voice": name or model.stem},
        )
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(path))


@package_cmd.command("add-index")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("index", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def add_index_cmd(package: Path, index: Path, out: Path) -> None:
    """Write OUT: PACKAGE with INDEX (.svcindex, `svc-studio index build`) as its retrieval
    index — for a voice imported without one. The model, speaker vector and provenance
    are copied unchanged; an index the package had is replaced."""
    from svc_core.errors import SvcError
    from svc_core.train.package import add_package_index

    try:
        add_package_index(package, index, out)  # plain errors for a corrupt or foreign file
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(out))


@package_cmd.command("info")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info_cmd(package: Path) -> None:
    """Check PACKAGE with the real loader and print what it holds."""
    from svc_core.errors import SvcError
    from svc_core.model.package import load_voice_package

    try:
        pkg = load_voice_package(package)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    info = {k: v for k, v in pkg.info.items() if k != "meta"}
    click.echo(json.dumps({**info, "meta": pkg.meta}, indent=2, default=str))
