"""``svc-studio f0``: extract the F0 curve of a vocal file and print its range."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("f0")
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--method",
    default="crepe-tiny",
    show_default=True,
    help="crepe-full, crepe-tiny, harvest, dio, praat, rmvpe.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the curve (float32 Hz per hop, 0 = unvoiced) as .npy.",
)
@click.option("--hop", type=float, default=0.01, show_default=True, help="Frame step, s.")
@click.option("--f0-min", type=float, default=50.0, show_default=True, help="Lowest F0, Hz.")
@click.option("--f0-max", type=float, default=1100.0, show_default=True, help="Highest F0, Hz.")
@click.option("--threshold", type=float, default=None, help="Voicing threshold (method-specific).")
@click.option(
    "--median", type=int, default=3, show_default=True, help="Median filter, frames (1 = off)."
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option(
    "--weights", type=click.Path(dir_okay=False), default=None, help="Weights file (rmvpe)."
)
def f0_cmd(
    src: Path,
    method: str,
    out: Path | None,
    hop: float,
    f0_min: float,
    f0_max: float,
    threshold: float | None,
    median: int,
    device: str,
    weights: str | None,
) -> None:
    """Extract the F0 of SRC and print its duration, voiced share and pitch range."""
    import time

    import numpy as np

    from svc_core.audio.io import load_audio
    from svc_core.errors import SvcError
    from svc_core.f0 import F0Params, extract_f0
    from svc_core.report import pitch_range, voiced_midi

    try:
        params = F0Params(
            method=method,
            hop_s=hop,
            f0_min=f0_min,
            f0_max=f0_max,
            voicing_threshold=threshold,
            median_filter=median,
            device=device,
            weights_path=weights,
        )
        audio, sr = load_audio(src)
        t0 = time.perf_counter()
        f0 = extract_f0(audio, sr, params)
        took = time.perf_counter() - t0
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, f0)
    duration = audio.shape[1] / sr
    voiced = float((f0 > 0).mean()) if f0.size else 0.0
    rng = pitch_range(voiced_midi(f0))
    summary = (
        f"{src.name}: {duration:.1f} s, {len(f0)} frames of {hop * 1000:g} ms, "
        f"{100 * voiced:.0f} % voiced ({params.method}, {took:.1f} s)"
    )
    click.echo(summary)
    if rng is None:
        click.echo("no pitched singing found")
    else:
        click.echo(
            f"range {rng.label} ({rng.low_hz:.0f}-{rng.high_hz:.0f} Hz, 5-95 %), "
            f"median {rng.median_note}, extremes {rng.min_note}-{rng.max_note}"
        )
    if out is not None:
        click.echo(f"saved {out}")
