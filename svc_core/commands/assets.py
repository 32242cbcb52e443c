"""``svc-studio assets``: list, pull, import and verify pretrained assets.

The models folder is ``--models-dir``, else the ``SVC_MODELS_DIR`` environment variable, else
``./models``. (The environment is read here, in the CLI layer, never in the library.)
"""

from __future__ import annotations

import os
from pathlib import Path

import click

DEFAULT_MODELS_DIR = "models"


def resolve_models_dir(value: Path | None) -> Path:
    """``--models-dir`` if given, else ``$SVC_MODELS_DIR``, else ``./models``."""
    if value is not None:
        return value
    return Path(os.environ.get("SVC_MODELS_DIR") or DEFAULT_MODELS_DIR)


models_dir_option = click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding pretrained assets [default: $SVC_MODELS_DIR, else ./models].",
)


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class _Bar:
    """A click progress bar per downloaded file, fed by the engine's progress(stage, f)."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None
        self.pos = 0

    def __call__(self, stage: str, fraction: float) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(length=1000, label=stage)
            self.bar.__enter__()
            self.pos = 0
        target = int(fraction * 1000)
        if self.bar is not None and target > self.pos:
            self.bar.update(target - self.pos)
            self.pos = target

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.group("assets")
def assets() -> None:
    """List, pull, import and verify pretrained assets."""


@assets.command("list")
@models_dir_option
@click.option("--kind", default=None, help="Only this kind (content, f0, separation, ...).")
def list_cmd(models_dir: Path | None, kind: str | None) -> None:
    """List registered assets and whether each is installed, then the presets."""
    from svc_core import assets as registry
    from svc_core.assets import list_assets

    root = resolve_models_dir(models_dir)
    click.echo(f"models folder: {root}")
    for a in list_assets(kind):
        installed = "installed" if (root / a.filename).is_file() else "-"
        hash_note = "sha256" if a.sha256 else ("sha256-prefix" if a.sha256_prefix else "no hash")
        click.echo(
            f"{a.name:26} {a.kind!s:11} {installed:9} {a.filename}  [{hash_note}; {a.licence}]"
        )
        click.echo(f"{'':26} {a.description}")
    if kind is not None:
        return
    click.echo("presets (svc-studio assets pull --preset NAME):")
    for preset, names in registry.PRESETS.items():
        if not all(n in registry.REGISTRY for n in names):
            continue  # a registry without the preset's assets (tests swap the registry)
        have = sum(registry.is_installed(n, root) for n in names)
        click.echo(f"{preset:26} {have}/{len(names)} installed: {', '.join(names)}")
        note = registry.PRESET_NOTES.get(preset)
        if note:
            click.echo(f"{'':26} {note}")


@assets.command("pull")
@click.argument("names", nargs=-1)
@click.option(
    "--preset",
    "presets",
    multiple=True,
    help="Also pull every asset of this preset (e.g. sovits5: so-vits-svc 5.0's complete set); "
    "see `assets list`.",
)
@models_dir_option
@click.option("--force", is_flag=True, help="Download again even if the file is there.")
def pull_cmd(
    names: tuple[str, ...], presets: tuple[str, ...], models_dir: Path | None, force: bool
) -> None:
    """Download assets NAMES and/or the assets of --preset (and the files they need) into the
    models folder."""
    from svc_core import assets as registry
    from svc_core.assets import pull
    from svc_core.errors import SvcError

    if not names and not presets:
        raise click.UsageError("give asset NAMES, or --preset NAME (see `svc-studio assets list`)")
    wanted: list[str] = []
    try:
        for preset in presets:
            wanted += [a.name for a in registry.preset_assets(preset)]
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    wanted += [n for n in names if n not in wanted]
    root = resolve_models_dir(models_dir)
    for name in dict.fromkeys(wanted):
        bar = _Bar()
        try:
            path = pull(name, root, bar, force=force)
        except SvcError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            bar.close()
        click.echo(f"{name}: {path} ({_human(path.stat().st_size)})")
    for preset in presets:
        note = registry.PRESET_NOTES.get(preset)
        if note:
            click.echo(f"preset {preset}: {note}")


@assets.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@models_dir_option
def import_cmd(name: str, file: Path, models_dir: Path | None) -> None:
    """Install FILE (downloaded elsewhere) as asset NAME, checking its hash."""
    from svc_core.assets import import_file
    from svc_core.errors import SvcError

    try:
        path = import_file(name, file, resolve_models_dir(models_dir))
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: {path}")


@assets.command("verify")
@click.argument("names", nargs=-1)
@models_dir_option
@click.option("--installed-only", is_flag=True, help="Skip assets that are not installed.")
def verify_cmd(names: tuple[str, ...], models_dir: Path | None, installed_only: bool) -> None:
    """Check installed assets against their published (or recorded) sha256.

    Exits with status 1 when a file does not match.
    """
    from svc_core.assets import verify
    from svc_core.errors import SvcError

    try:
        rows = verify(resolve_models_dir(models_dir), names or None)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    bad = False
    for name, status in rows:
        if installed_only and status == "missing":
            continue
        bad = bad or status.startswith("MISMATCH") or "CHANGED" in status
        click.echo(f"{name:26} {status}")
    if bad:
        raise click.exceptions.Exit(1)
