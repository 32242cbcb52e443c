"""``svc-studio train``: train (or continue training) a voice model on a preprocessed dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@click.command("train")
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--config",
    "config_name",
    default="base",
    show_default=True,
    help="Built-in config (base, tiny) or a YAML file.",
)
@click.option("--max-steps", type=click.IntRange(min=0), help="Stop at this total step.")
@click.option("--max-epochs", type=click.IntRange(min=0), help="Stop after this many epochs.")
@click.option("--max-seconds", type=click.FloatRange(min=0), help="Wall-clock budget of this call.")
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help="Stop after this many evaluations without a better validation loss.",
)
@click.option(
    "--base-model",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fine-tune from this model file: so-vits-svc 5.0's pretrain, training checkpoint or "
    "export, or an svc-studio checkpoint (.pt) or voice package (.zip). The dataset's speaker "
    "vectors must come from the same encoder (5.0's: preprocess --speaker-encoder sovits5).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--eval-interval", type=click.IntRange(min=1), help="Override the config's.")
@click.option("--save-interval", type=click.IntRange(min=1), help="Override the config's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train_cmd(
    dataset_dir: Path,
    out_dir: Path,
    config_name: str,
    max_steps: int | None,
    max_epochs: int | None,
    max_seconds: float | None,
    patience: int | None,
    base_model: Path | None,
    device: str,
    eval_interval: int | None,
    save_interval: int | None,
    as_json: bool,
) -> None:
    """Train a voice model on DATASET_DIR (made by `preprocess`) into OUT_DIR.

    Running it again on the same OUT_DIR continues from the last checkpoint. Ctrl-C or
    SIGTERM saves a checkpoint before exiting.
    """
    import signal

    from svc_core.errors import Cancelled, SvcError
    from svc_core.train.events import CheckpointSaved, Evaluated, StepLogged, TrainStarted
    from svc_core.train.signals import StopOnSignal
    from svc_core.train.trainer import TrainParams, train

    def on_event(e) -> None:
        if isinstance(e, TrainStarted):
            resumed = e.resumed_from_step
            where = f"resuming at step {resumed}" if resumed is not None else "new run"
            click.echo(
                f"{where}; starts from: {e.starts_from}; device {e.device}; "
                f"{e.train_slices} training slices",
                err=True,
            )
            for note in e.notes:
                click.echo(f"note: {note}", err=True)
        elif isinstance(e, StepLogged):
            losses = e.losses
            click.echo(
                f"step {e.step} epoch {e.epoch} [{100.0 * e.fraction:5.1f}%] "
                f"mel {losses['mel']:.3f} g {losses['loss_g']:.2f} d {losses['loss_d']:.2f} "
                f"lr {e.lr:.2e} eta {_fmt_eta(e.eta_s)}",
                err=True,
            )
        elif isinstance(e, Evaluated):
            star = " (best)" if e.best else ""
            click.echo(f"step {e.step}: validation mel {e.val_mel:.4f}{star}", err=True)
        elif isinstance(e, CheckpointSaved):
            click.echo(f"saved {e.path}", err=True)

    try:
        params = TrainParams(
            max_steps=max_steps,
            max_epochs=max_epochs,
            max_seconds=max_seconds,
            patience=patience,
            base_model=base_model,
            device=device,
            eval_interval=eval_interval,
            save_interval=save_interval,
        )
        with StopOnSignal((signal.SIGTERM, signal.SIGINT)) as stop:
            result = train(
                dataset_dir, out_dir, config_name, params, should_stop=stop, on_event=on_event
            )
    except Cancelled as exc:  # SIGINT/SIGTERM: stopped on request, after saving; not an error
        click.echo(f"stopped: {exc}", err=True)
        sys.exit(130)
    except SvcError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        best = "n/a" if result.best_val_mel is None else f"{result.best_val_mel:.4f}"
        click.echo(
            f"stopped by {result.stopped_by} at step {result.step} (epoch {result.epoch}); "
            f"starts from: {result.starts_from}; best validation mel {best}\n"
            f"checkpoint: {result.checkpoint}"
        )
