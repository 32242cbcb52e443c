"""``svc-studio speaker``: a singer's speaker vector as ``<voice>.spk.npy``.

Two encoders: ``ge2e`` (default: Resemblyzer's GE2E, the normalised centroid of the files) and
``sovits5`` (so-vits-svc 5.0's own LSTM encoder, ``best_model.pth.tar``: 5.0's per-file vectors
and their plain mean, exactly as 5.0's ``preprocess_speaker.py`` + ``preprocess_speaker_ave.py``).
"""

from __future__ import annotations

from pathlib import Path

import click

from svc_core.commands.assets import models_dir_option, resolve_models_dir

SOVITS5_ASSET = "sovits5-speaker"


@click.command("speaker")
@click.argument(
    "audio", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output .spk.npy (float32 [256]).",
)
@click.option(
    "--encoder",
    type=click.Choice(["ge2e", "sovits5"]),
    default="ge2e",
    show_default=True,
    help="ge2e: Resemblyzer's GE2E (normalised centroid); sovits5: so-vits-svc 5.0's LSTM "
    "speaker encoder (plain mean of the files' vectors, as 5.0).",
)
@click.option(
    "--encoder-model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=f"5.0's best_model.pth.tar [default: asset '{SOVITS5_ASSET}' in the models folder].",
)
@models_dir_option
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
def speaker_cmd(
    audio: tuple[Path, ...],
    out_path: Path,
    encoder: str,
    encoder_model: Path | None,
    models_dir: Path | None,
    device: str,
) -> None:
    """Embed each AUDIO file (one singer) and save the singer's vector.

    Files that are silent or too short are skipped with a note.
    """
    if encoder == "sovits5":
        _sovits5(audio, out_path, encoder_model, models_dir, device)
        return
    if encoder_model is not None:
        raise click.UsageError("--encoder-model applies to --encoder sovits5 only.")
    _ge2e(audio, out_path, device)


def _ge2e(audio: tuple[Path, ...], out_path: Path, device: str) -> None:
    from svc_core.audio.io import load_audio
    from svc_core.errors import BadAudioError, SvcError
    from svc_core.speaker import SpeakerParams, centroid, cosine, save_spk, speaker_embedding

    params = SpeakerParams(device=device)
    embs, names = [], []
    try:
        for path in audio:
            wav, sr = load_audio(path)
            try:
                embs.append(speaker_embedding(wav, sr, params))
                names.append(path.name)
            except BadAudioError as exc:
                click.echo(f"skipped {path.name}: {exc}", err=True)
        if not embs:
            raise click.ClickException("No file had enough voice for a speaker embedding.")
        center = centroid(embs)
        save_spk(out_path, center)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, emb in zip(names, embs, strict=True):
        click.echo(f"{name}: cosine to centroid {cosine(emb, center):.3f}")
    click.echo(f"{out_path}: centroid of {len(embs)} file(s)")


def _sovits5(
    audio: tuple[Path, ...],
    out_path: Path,
    encoder_model: Path | None,
    models_dir: Path | None,
    device: str,
) -> None:
    from svc_core.assets import asset_path
    from svc_core.errors import BadAudioError, SvcError
    from svc_core.speaker import cosine, save_spk
    from svc_core.speaker_sovits5 import (
        load_sovits5_speaker_encoder,
        plain_mean,
        sovits5_embedding,
    )

    vecs, names = [], []
    try:
        model = encoder_model
        if model is None:
            model = asset_path(SOVITS5_ASSET, resolve_models_dir(models_dir))
        enc = load_sovits5_speaker_encoder(model, device)
        for path in audio:
            try:
                vecs.append(sovits5_embedding(path, enc))
                names.append(path.name)
            except BadAudioError as exc:
                click.echo(f"skipped {path.name}: {exc}", err=True)
        if not vecs:
            raise click.ClickException("No file had enough sound for a speaker embedding.")
        mean = plain_mean(vecs)
        save_spk(out_path, mean)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    if len(vecs) > 1:
        for name, vec in zip(names, vecs, strict=True):
            click.echo(f"{name}: cosine to the mean {cosine(vec, mean):.3f}")
    click.echo(
        f"{out_path}: so-vits-svc 5.0 speaker vector, mean of {len(vecs)} file(s) "
        "(not re-normalised, as 5.0)"
    )
