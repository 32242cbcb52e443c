"""``svc-studio content``: whisper PPG and/or HuBERT-soft vec features of audio files."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("content")
@click.argument(
    "audio", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--ppg",
    "ppg_ckpt",
    type=click.Path(exists=True, path_type=Path),
    help="Whisper checkpoint (.pt), or a CTranslate2 folder with --ppg-backend whisper-ct2.",
)
@click.option(
    "--vec",
    "vec_ckpt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="HuBERT-soft checkpoint (hubert-soft-0d54a1f4.pt).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for <name>.ppg.npy / <name>.vec.npy.",
)
@click.option(
    "--ppg-backend",
    type=click.Choice(["whisper", "whisper-ct2"]),
    default="whisper",
    show_default=True,
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
@click.option(
    "--full-window",
    is_flag=True,
    help="Zero-pad every 30-s Whisper window (OpenAI) instead of so-vits-svc 5.0's own-length.",
)
def content_cmd(
    audio: tuple[Path, ...],
    ppg_ckpt: Path | None,
    vec_ckpt: Path | None,
    out_dir: Path,
    ppg_backend: str,
    device: str,
    precision: str,
    full_window: bool,
) -> None:
    """Write content features of each AUDIO file: float32 [N, dim] at 50 frames/s.

    N = ceil(samples at 16 kHz / 320). Models are loaded once for all files.
    """
    import numpy as np

    from svc_core.audio.io import load_audio
    from svc_core.content import ContentExtractor, ContentParams
    from svc_core.errors import SvcError
    from svc_core.utils import atomic_write

    if ppg_ckpt is None and vec_ckpt is None:
        raise click.UsageError("Give --ppg, --vec or both.")
    params = ContentParams(
        ppg_checkpoint=str(ppg_ckpt) if ppg_ckpt else None,
        vec_checkpoint=str(vec_ckpt) if vec_ckpt else None,
        ppg_backend=ppg_backend,
        device=device,
        precision=precision,
        whisper_full_window=full_window,
    )
    try:
        extractor = ContentExtractor(params)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in audio:
            wav, sr = load_audio(path)
            feats = extractor.extract(wav, sr)
            for key, arr in feats.items():
                dst = out_dir / f"{path.stem}.{key}.npy"
                with atomic_write(dst) as fh:
                    np.save(fh, arr, allow_pickle=False)
                click.echo(f"{dst}: {arr.shape[0]} frames x {arr.shape[1]}")
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
