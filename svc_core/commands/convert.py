"""``svc-studio convert``: vocals → a trained voice (a voice package or a checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from svc_core import recipes
from svc_core.commands.assets import models_dir_option, resolve_models_dir


def _transpose(value: str) -> float | None:
    if value.lower() == "auto":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise click.BadParameter("a number of semitones or 'auto'") from exc


@click.command("convert")
@click.argument("vocals", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--voice",
    "voice_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Voice package (.zip) or training checkpoint (.pt).",
)
@click.option(
    "--transpose",
    default="0",
    show_default=True,
    help="Semitones, or 'auto' (into the voice's range).",
)
@click.option(
    "--f0",
    "f0_method",
    default=None,
    help="F0 method [default: the one the voice was trained with].",
)
@click.option("--ppg", default=None, help="Whisper asset/file [default: the voice's].")
@click.option("--vec", default=None, help="HuBERT-soft asset/file [default: the voice's].")
@click.option(
    "--speaker",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A .spk.npy to convert into instead of the voice's own centroid.",
)
@click.option(
    "--mix-with",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A second .spk.npy blended with the target (see --mix-weight).",
)
@click.option("--mix-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option(
    "--index",
    "index_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The voice's retrieval index (.svcindex, `svc-studio index build`).",
)
@click.option(
    "--retrieval-ratio",
    type=click.FloatRange(0, 1),
    default=None,
    help="Blend of the source's content features with the voice's nearest training frames "
    f"[default: {recipes.DEFAULT_RETRIEVAL_RATIO} with --index, else 0].",
)
@click.option(
    "--protect",
    type=click.FloatRange(0, 0.5),
    default=recipes.DEFAULT_PROTECT,
    show_default=True,
    help="Keep 1-protect of the original features on unvoiced frames (0.5 = off).",
)
@click.option(
    "--volume-envelope",
    type=click.FloatRange(0, 1),
    default=recipes.DEFAULT_VOLUME_ENVELOPE,
    show_default=True,
    help="1 keeps the output's loudness; 0 gives it the source's envelope (RVC rms_mix_rate).",
)
@click.option(
    "--hparams",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A so-vits-svc 5.0 model's config YAML (5.0 files without hp_str; default sizes: "
    "5.0's base.yaml).",
)
@click.option("--device", default="auto", show_default=True)
@models_dir_option
def convert_cmd(
    vocals: Path,
    out_dir: Path,
    voice_path: Path,
    transpose: str,
    f0_method: str | None,
    ppg: str | None,
    vec: str | None,
    speaker: Path | None,
    mix_with: Path | None,
    mix_weight: float,
    index_path: Path | None,
    retrieval_ratio: float | None,
    protect: float,
    volume_envelope: float,
    hparams: Path | None,
    device: str,
    models_dir: Path | None,
) -> None:
    """Convert VOCALS into the voice; writes OUT_DIR/vocals.wav (44.1 kHz) and
    OUT_DIR/vocals_model_rate.wav, and prints the transpose used."""
    from svc_core.commands._progress import StageProgress
    from svc_core.commands.preprocess import resolve_checkpoint
    from svc_core.content.extract import ContentParams
    from svc_core.convert.engine import (
        ConvertParams,
        convert_file,
        load_voice_model_cached,
        reference_f0_from_histogram,
    )
    from svc_core.errors import SvcError
    from svc_core.f0.base import F0Params
    from svc_core.speaker import load_spk, mix_speakers
    from svc_core.utils import resolve_device

    models = resolve_models_dir(models_dir)
    bar = StageProgress()
    try:
        dev = resolve_device(device)
        cuda = dev != "cpu"
        model = load_voice_model_cached(voice_path, device=dev, hparams=hparams)
        meta = dict(model.info.get("meta") or {})
        feats = dict(meta.get("features") or {})
        if model.info.get("format") == "sovits5":  # a bare 5.0 file: 5.0's encoders and F0
            from svc_core.train.package import sovits5_features

            feats = sovits5_features(model.config)
        ppg_name = ppg or feats.get("ppg_model") or "none"
        vec_name = vec or feats.get("vec_model") or "none"
        params = ConvertParams(
            transpose=_transpose(transpose),
            f0=F0Params(
                method=recipes.choose_f0_method(f0_method or feats.get("f0_method"), cuda=cuda),
                device=dev,
            ),
            content=ContentParams(
                ppg_checkpoint=resolve_checkpoint(ppg_name, models),
                vec_checkpoint=resolve_checkpoint(vec_name, models),
                device=dev,
            ),
            retrieval_ratio=recipes.choose_retrieval_ratio(
                retrieval_ratio, has_index=index_path is not None
            ),
            protect=protect,
            volume_envelope=volume_envelope,
        )
        target = load_spk(speaker) if speaker else model.speaker
        if mix_with is not None:
            if target is None:
                raise click.UsageError("--mix-with needs a target embedding (--speaker)")
            normalise = feats.get("speaker_encoder", "ge2e") == "ge2e"
            target = mix_speakers(target, load_spk(mix_with), mix_weight, normalise=normalise)
        if target is None:
            raise click.UsageError(
                "this model file holds no speaker vector: give the singer's --speaker .spk.npy"
            )
        hist = meta.get("pitch_histogram") or []
        reference = reference_f0_from_histogram(hist, float(meta.get("pitch_hop_s") or 0.01))
        result, model_rate, wav44 = convert_file(
            vocals,
            out_dir,
            voice_path,
            params,
            speaker=target,
            reference_f0=reference if reference.size else None,
            device=dev,
            progress=bar,
            hparams=hparams,
            index=index_path,
        )
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    click.echo(
        json.dumps(
            {**result.summary(), "vocals": str(wav44), "vocals_model_rate": str(model_rate)},
            indent=2,
        )
    )
