"""``svc-studio speaker``: a singer's GE2E embedding (centroid of files) as ``<voice>.spk.npy``."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
def speaker_cmd(audio: tuple[Path, ...], out_path: Path, device: str) -> None:
    """Embed each AUDIO file (one singer) and save the normalised mean embedding.

    Files that are silent or too short are skipped with a note.
    """
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
