"""``svc-studio slice``: cut a vocal file at its silences (Audio Slicer) into WAV slices."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("slice")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--threshold", type=float, default=-40.0, show_default=True, help="Silence below this RMS, dB."
)
@click.option("--min-length", type=int, default=5000, show_default=True, help="Shortest slice, ms.")
@click.option(
    "--min-interval", type=int, default=300, show_default=True, help="Shortest silence cut, ms."
)
@click.option("--hop", type=int, default=10, show_default=True, help="Analysis hop, ms.")
@click.option(
    "--max-sil-kept",
    type=int,
    default=500,
    show_default=True,
    help="Longest silence kept at a slice edge, ms.",
)
@click.option(
    "--max-length",
    type=float,
    default=15.0,
    show_default=True,
    help="Split slices longer than this, s (0 = off).",
)
def slice_cmd(
    src: Path,
    out_dir: Path,
    threshold: float,
    min_length: int,
    min_interval: int,
    hop: int,
    max_sil_kept: int,
    max_length: float,
) -> None:
    """Slice SRC into OUT_DIR/<name>_NNNN.wav plus OUT_DIR/<name>.slices.json (boundaries)."""
    from svc_core.audio.slicer import SliceParams, manifest_path, slice_file
    from svc_core.errors import SvcError

    try:
        params = SliceParams(
            threshold_db=threshold,
            min_length_ms=min_length,
            min_interval_ms=min_interval,
            hop_ms=hop,
            max_sil_kept_ms=max_sil_kept,
            max_length_s=max_length,
        )
        infos = slice_file(src, out_dir, params)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    total = sum(i.duration_s for i in infos)
    longest = max(i.duration_s for i in infos)
    click.echo(
        f"{len(infos)} slices, {total:.1f} s in all (longest {longest:.1f} s) -> "
        f"{manifest_path(out_dir, src)}"
    )
