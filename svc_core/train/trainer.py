"""Train a so-VITS-svc 5.0 voice model on a preprocessed dataset, resumably.

:func:`train` is the one entry point (the worker and ``svc-studio train`` call it). A run
lives in one folder::

    out_dir/
      config.yaml                      the effective config (content dims from the dataset)
      metrics.jsonl                    one JSON object per line (see below)
      checkpoints/step_XXXXXXXX.pt     the last ``keep_last`` saves
      checkpoints/latest.pt            newest save: what a later call resumes from
      checkpoints/best.pt              lowest validation mel loss so far
      previews/reference/<slice>.wav   the validation slices' real audio (written once)
      previews/step_XXXXXXXX/<slice>.wav  conversions of them at each evaluation

``metrics.jsonl`` lines: ``{"kind": "train", "step", "epoch", "losses": {...}, "lr",
"seconds", "steps_per_s", "time"}`` every ``log_interval`` steps (losses averaged over the
window) and ``{"kind": "valid", "step", "epoch", "val_mel", "best", "seconds", "time"}`` at
every evaluation. ``seconds`` is training time summed over all sessions of the run. On
resume, lines past the checkpoint's step (from a session that died after its last save)
are dropped, so the curve has no duplicates.

Resume is exact: the checkpoint holds models, optimisers, schedulers, the grad scaler, all
RNG states and the position in the epoch's batch order, so N steps + resume + M steps give
the same parameters as N + M steps in one go (on CPU; bit-exact on GPU only with
``train.deterministic``). Evaluation runs under a forked RNG with a fixed seed, so it
neither disturbs the training stream nor varies between evaluations.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svc_core.errors import BadInputError, Cancelled, IncompatibleError, SvcError
from svc_core.model import builders
from svc_core.model.config import SVCConfig, config_hash, load_config, model_hash, save_config
from svc_core.progress import ProgressFn, StopFn
from svc_core.train import checkpoint as ck
from svc_core.train.dataset import (
    ResumableBatchSampler,
    SliceDataset,
    collate,
    load_manifest,
)
from svc_core.train.events import (
    CheckpointSaved,
    Evaluated,
    StepLogged,
    TrainCancelled,
    TrainEnded,
    TrainEvent,
    TrainStarted,
)
from svc_core.train.state import Counters, TrainState
from svc_core.train.steps import StepContext, evaluate, train_step
from svc_core.utils import file_sha256, resolve_device, write_atomic

EventFn = Callable[[TrainEvent], None]
METRICS_NAME = "metrics.jsonl"
PREVIEWS_DIR = "previews"
STOP_REASONS = ("max_steps", "max_epochs", "max_seconds", "plateau")
_MAX_BAD_STEPS = 20  # consecutive non-finite losses before the run is declared diverged


@dataclass(frozen=True)
class TrainParams:
    """How long and how to run one training call (not part of the config hash).

    At least one of ``max_steps``, ``max_epochs`` and ``max_seconds`` must be set. Step and
    epoch limits count from the start of the run (a resumed run continues towards the same
    limit); ``max_seconds`` is the budget of this call.

    Attributes:
        max_steps: stop at this total step count.
        max_epochs: stop after this many completed epochs.
        max_seconds: wall-clock budget of this call (checked between steps).
        patience: stop when this many evaluations in a row did not improve the best
            validation mel loss (None: never).
        base_model: fine-tune from this file's weights (a training checkpoint or a voice
            package); ignored when ``out_dir`` already holds a checkpoint to resume.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        log_interval, eval_interval, save_interval, keep_last, num_workers: override the
            config's values (None: use the config).
        save_every_s: also save when this many seconds passed since the last save.
        num_previews: validation slices rendered to WAV at each evaluation.
        preview_seconds: length of the preview crops (the loss is on training segments).
        keep_previews: evaluations whose preview folders are kept.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    max_seconds: float | None = None
    patience: int | None = None
    base_model: Path | None = None
    device: str = "auto"
    log_interval: int | None = None
    eval_interval: int | None = None
    save_interval: int | None = None
    keep_last: int | None = None
    num_workers: int | None = None
    save_every_s: float | None = None
    num_previews: int = 2
    preview_seconds: float = 6.0
    keep_previews: int = 5

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_epochs is None and self.max_seconds is None:
            raise BadInputError("give a training limit: max_steps, max_epochs or max_seconds")
        for name in ("max_steps", "max_epochs", "patience"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise BadInputError(f"{name} must be >= 0")
        for name in ("log_interval", "eval_interval", "save_interval", "keep_last"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise BadInputError(f"{name} must be >= 1")
        if self.max_seconds is not None and self.max_seconds < 0:
            raise BadInputError("max_seconds must be >= 0")


@dataclass(frozen=True)
class TrainResult:
    """What a finished (not cancelled) training call reports.

    Attributes:
        out_dir: the run folder.
        checkpoint: ``checkpoints/latest.pt`` (the state at ``step``).
        best_checkpoint: ``checkpoints/best.pt`` or None if never evaluated.
        step, epoch: totals of the run (epoch = completed epochs).
        stopped_by: one of ``max_steps``, ``max_epochs``, ``max_seconds``, ``plateau``.
        starts_from: ``"from scratch"`` or ``"base model <file name> (sha256 <12 hex>)"``.
        resumed_from_step: step this call continued from (None: a fresh run).
        best_val_mel, last_val_mel: validation mel L1 (inference path), None if none yet.
        losses: training losses averaged over the last logging window.
        train_seconds: training time of the whole run; seconds: of this call.
        config_hash: identifies the config (see :func:`config_hash`).
        notes: plain-language remarks (no validation split, base model ignored, ...).
    """

    out_dir: Path
    checkpoint: Path
    best_checkpoint: Path | None
    step: int
    epoch: int
    stopped_by: str
    starts_from: str
    resumed_from_step: int | None
    best_val_mel: float | None
    last_val_mel: float | None
    losses: dict[str, float]
    train_seconds: float
    seconds: float
    config_hash: str
    metrics_path: Path
    previews_dir: Path
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        d["notes"] = list(self.notes)
        return d


# -- helpers -------------------------------------------------------------------------------


def _dataset_fingerprint(ds: SliceDataset) -> str:
    import hashlib

    blob = json.dumps([(e.id, e.wav) for e in ds.entries]).encode()
    return hashlib.sha256(blob).hexdigest()


def load_base_weights(
    path: Path, config: SVCConfig, gen: torch.nn.Module, disc: torch.nn.Module
) -> dict[str, Any]:
    """Initialise ``gen`` (and ``disc`` where the file has one) from a base model.

    ``path`` is so-vits-svc 5.0's pretrain, training checkpoint or export, an svc-studio
    training checkpoint, or a voice package (``.zip``). Shapes and key sets must match the
    run's config exactly; a file without the training-only parts of the generator (5.0's
    export, a voice package) leaves ``emb_g``, ``enc_q`` and the speaker classifier at their
    initial values. Returns the origin record stored in checkpoints.

    Raises:
        BadInputError: the file does not exist.
        IncompatibleError: unknown format, other sample rate/hop, or mismatching tensors.
    """
    from svc_core.model.sovits5 import (
        TRAIN_ONLY_PREFIXES,
        check_state_fits,
        is_sovits5_dict,
        parse_sovits5,
        read_torch_file,
    )

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"base model file {path} does not exist")
    fmt = "svc-studio"
    if path.suffix.lower() == ".zip":
        from svc_core.model.package import load_voice_package

        pkg = load_voice_package(path)
        base_cfg, g_state, d_state = pkg.config, pkg.generator_state, None
    else:
        obj = read_torch_file(path)
        if is_sovits5_dict(obj):
            f = parse_sovits5(obj, path)
            fmt = f"so-vits-svc 5.0 {f.layout}"
            # a 5.0 file without hp_str is read with this run's sizes: the shape check decides
            base_cfg = f.config if f.config_source == "the file's hp_str" else config
            g_state, d_state = f.generator, f.discriminator
        else:
            from svc_core.model.config import config_from_dict

            ckpt = ck.check_checkpoint(obj, path)
            base_cfg = config_from_dict(ckpt["config"])
            g_state, d_state = ckpt["generator"], ckpt.get("discriminator")
    for key in ("sample_rate", "hop_length"):
        a, b = getattr(base_cfg.audio, key), getattr(config.audio, key)
        if a != b:
            raise IncompatibleError(
                f"base model {path.name} was trained with audio.{key} = {a}, this config uses {b}"
            )
    partial = not any(k.startswith(TRAIN_ONLY_PREFIXES) for k in g_state)
    hint = (
        "this run's config (a base model must have the same model sizes and content "
        "features: whisper/HuBERT dimensions)"
    )
    check_state_fits(
        gen, g_state, f"base model {path.name} (generator)", hint,
        ignore_prefixes=TRAIN_ONLY_PREFIXES if partial else (),
    )  # fmt: skip
    gen.load_state_dict(g_state, strict=not partial)
    if d_state is not None:
        check_state_fits(disc, d_state, f"base model {path.name} (discriminator)", hint)
        disc.load_state_dict(d_state)
    return {
        "kind": "base_model",
        "name": path.name,
        "format": fmt,
        "sha256": file_sha256(path),
        "discriminator": d_state is not None,
        "partial": partial,
    }


def _truncate_metrics(path: Path, max_step: int) -> None:
    """Drop metric lines written after the checkpoint we resume from (atomic rewrite)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text("utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= max_step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
    write_atomic(path, "".join(x + "\n" for x in keep))


class _RunLock:
    """An exclusive ``flock`` on ``out_dir/.lock``: one trainer per run folder.

    A task delivered twice (Celery ``acks_late``) must not interleave two runs' checkpoints.
    The kernel drops the lock when the process dies, so a crashed run never blocks a resume.
    """

    def __init__(self, out_dir: Path):
        self.path = out_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> _RunLock:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise SvcError(
                f"another training process is already using {self.path.parent}; wait for it "
                "to finish or stop it first"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:80] or "slice"


# -- the run -------------------------------------------------------------------------------


class _Run:
    """One call of :func:`train`: builds everything, then :meth:`loop` runs the steps."""

    def __init__(
        self,
        dataset_dir: Path,
        out_dir: Path,
        config: SVCConfig,
        params: TrainParams,
        progress: ProgressFn | None,
        should_stop: StopFn | None,
        on_event: EventFn | None,
    ):
        self.t_start = time.monotonic()
        self.params = params
        self.progress = progress
        self.should_stop = should_stop
        self.on_event = on_event
        self.notes: list[str] = []
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / ck.CHECKPOINT_DIR
        self.prev_dir = self.out / PREVIEWS_DIR
        self.metrics_path = self.out / METRICS_NAME

        manifest = load_manifest(dataset_dir)
        if manifest.spk_dim != config.model.spk_dim:
            raise BadInputError(
                f"the dataset's speaker embeddings have {manifest.spk_dim} dims, the model "
                f"expects {config.model.spk_dim}"
            )
        self.config = config.with_content_dims(manifest.ppg_dim, manifest.vec_dim)
        self.hash = config_hash(self.config)
        a, t = self.config.audio, self.config.train
        self.tc = t
        self.log_interval = params.log_interval or t.log_interval
        self.eval_interval = params.eval_interval or t.eval_interval
        self.save_interval = params.save_interval or t.save_interval
        self.keep_last = params.keep_last or t.keep_last
        self.num_workers = t.num_workers if params.num_workers is None else params.num_workers

        ds_kw = {
            "sample_rate": a.sample_rate,
            "hop_length": a.hop_length,
            "min_frames": a.segment_frames,
            "max_frames": t.max_frames,
        }
        self.train_ds = SliceDataset(dataset_dir, manifest, "train", **ds_kw)
        if len(self.train_ds) == 0:
            raise BadInputError(
                f"no training slice is at least {a.segment_size / a.sample_rate:.2f} s long "
                f"({self.train_ds.skipped_short} too short): add more audio"
            )
        if self.train_ds.skipped_short:
            self.notes.append(
                f"{self.train_ds.skipped_short} training slices shorter than one segment "
                "were skipped"
            )
        self.valid_ds = SliceDataset(dataset_dir, manifest, "valid", **ds_kw)
        if len(self.valid_ds) == 0:
            self.valid_ds = self.train_ds
            self.notes.append("the dataset has no validation slices: validating on training ones")
        self.batches_per_epoch = math.ceil(len(self.train_ds) / t.batch_size)

        self.device = torch.device(resolve_device(params.device))
        self.cuda = self.device.type == "cuda"
        amp_dtype = None
        if self.cuda and t.precision != "fp32":
            amp_dtype = torch.bfloat16 if t.precision == "bf16" else torch.float16
        if self.cuda:
            torch.backends.cudnn.deterministic = t.deterministic
            torch.backends.cudnn.benchmark = not t.deterministic

        for folder in (self.out, self.ckpt_dir):
            ck.sweep_temp_files(folder)

        # from here on the RNG streams define the run: seed them before building the modules
        random.seed(t.seed)
        np.random.seed(t.seed % 2**32)
        torch.manual_seed(t.seed)
        gen = builders.build_generator(self.config)
        disc = builders.build_discriminator(self.config)
        counters = Counters(dataset=_dataset_fingerprint(self.train_ds))
        self.resumed_from: int | None = None

        resume_path = ck.find_resume_checkpoint(self.out)
        resume = None
        if resume_path is not None:
            try:
                resume = ck.load_checkpoint_file(resume_path)
            except IncompatibleError as exc:
                raise IncompatibleError(
                    f"{exc}. The run in {self.out} cannot continue from it: move it away to "
                    "continue from an older checkpoints/step_*.pt, or choose a new output folder"
                ) from exc
        if resume is not None and resume.get("config_hash") != self.hash:
            raise IncompatibleError(
                f"{self.out} holds a checkpoint (step {resume.get('state', {}).get('step')}) of "
                f"a different model/training config ('{resume.get('config', {}).get('name')}'). "
                "Train with the same config and dataset features to continue it, or choose a "
                "new output folder to start another run."
            )
        if resume is None and params.base_model is not None:
            counters.origin = load_base_weights(params.base_model, self.config, gen, disc)

        gen.to(self.device)
        disc.to(self.device)
        opt_g = builders.build_optimizer(gen.parameters(), t)
        opt_d = builders.build_optimizer(disc.parameters(), t, lr_scale=1 / t.accum_step)
        fp16 = amp_dtype is torch.float16 and self.cuda
        self.ts = TrainState(
            generator=gen,
            discriminator=disc,
            optim_g=opt_g,
            optim_d=opt_d,
            sched_g=builders.build_scheduler(opt_g, t),
            sched_d=builders.build_scheduler(opt_d, t),
            scaler_g=torch.amp.GradScaler("cuda", enabled=fp16),
            scaler_d=torch.amp.GradScaler("cuda", enabled=fp16),
            counters=counters,
        )
        self.ctx = StepContext(
            config=self.config,
            device=self.device,
            spec=builders.build_linear_spectrogram(self.config).to(self.device),
            mel=builders.build_mel_spectrogram(self.config).to(self.device),
            stft_loss=builders.build_stft_loss(self.config).to(self.device),
            batches_per_epoch=self.batches_per_epoch,
            amp_dtype=amp_dtype,
        )

        if resume is not None:
            self.ts.load_state_dict(resume, self.device)
            ck.set_rng_state(resume["rng"])
            self.resumed_from = self.state.step
            if params.base_model is not None:
                self.notes.append(
                    f"base model {Path(params.base_model).name} ignored: continuing the run "
                    f"in {self.out} (it started {self.state.starts_from()})"
                )
            fp = _dataset_fingerprint(self.train_ds)
            if self.state.dataset and self.state.dataset != fp:
                self.notes.append("the dataset changed since the last checkpoint")
            self.state.dataset = fp
        _truncate_metrics(self.metrics_path, self.state.step)
        save_config(self.config, self.out / "config.yaml")

        self.start_step = self.state.step
        self.last_saved_step = self.state.step if resume is not None else -1
        self.last_eval_step = -1
        self.last_save_time = time.monotonic()
        self.window: dict[str, list[float]] = {}
        self.last_losses: dict[str, float] = {}
        self.bad_steps = 0

    # -- checkpoint ------------------------------------------------------------------------

    @property
    def state(self) -> Counters:
        return self.ts.counters

    def _checkpoint_dict(self) -> dict[str, Any]:
        return {
            "format": ck.CHECKPOINT_FORMAT,
            "version": ck.CHECKPOINT_VERSION,
            "config": self.config.to_dict(),
            "config_hash": self.hash,
            "model_hash": model_hash(self.config),
            **self.ts.state_dict(),
            "rng": ck.rng_state(),
        }

    def save(self, best: bool = False) -> Path:
        path = self.ckpt_dir / ck.step_name(self.state.step)
        if self.last_saved_step != self.state.step or not path.is_file():
            ck.atomic_torch_save(self._checkpoint_dict(), path)
            ck.link_or_copy(path, self.ckpt_dir / ck.LATEST_NAME)
            self.last_saved_step = self.state.step
            self.last_save_time = time.monotonic()
            self._event(CheckpointSaved(step=self.state.step, path=str(path)))
        if best:
            ck.link_or_copy(path, self.ckpt_dir / ck.BEST_NAME)
        ck.rotate(self.ckpt_dir, self.keep_last)
        return path

    # -- bookkeeping -----------------------------------------------------------------------

    def _event(self, e: TrainEvent) -> None:
        if self.on_event is not None:
            self.on_event(e)

    def _metrics(self, row: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    def _fraction_and_eta(self) -> tuple[float, float | None]:
        p, s = self.params, self.state
        done_steps = s.step - self.start_step
        rate = done_steps / max(self.elapsed(), 1e-9) if done_steps > 0 else None
        fracs, etas = [], []
        if p.max_steps:
            fracs.append(s.step / p.max_steps)
            if rate:
                etas.append(max(p.max_steps - s.step, 0) / rate)
        if p.max_epochs:
            total = p.max_epochs * self.batches_per_epoch
            pos = s.epoch * self.batches_per_epoch + s.batch
            fracs.append(pos / total)
            if rate:
                etas.append(max(total - pos, 0) / rate)
        if p.max_seconds:
            fracs.append(self.elapsed() / p.max_seconds)
            etas.append(max(p.max_seconds - self.elapsed(), 0.0))
        frac = min(max(fracs, default=0.0), 1.0)
        return frac, (min(etas) if etas else None)

    def limit_reached(self) -> str | None:
        p, s = self.params, self.state
        if p.max_steps is not None and s.step >= p.max_steps:
            return "max_steps"
        if p.max_epochs is not None and s.epoch >= p.max_epochs:
            return "max_epochs"
        if p.max_seconds is not None and self.elapsed() >= p.max_seconds:
            return "max_seconds"
        if p.patience is not None and s.best_val is not None:
            if s.evals_since_best >= p.patience:
                return "plateau"
        return None

    # -- one step --------------------------------------------------------------------------

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        losses, ok = train_step(self.ts, self.ctx, batch)
        if ok:
            self.bad_steps = 0
        else:
            self.bad_steps += 1
            if self.bad_steps >= _MAX_BAD_STEPS:
                raise SvcError(
                    f"training diverged: losses were NaN/inf for {_MAX_BAD_STEPS} steps in a "
                    f"row (step {self.state.step}). The last checkpoint is kept; lower the "
                    "learning rate or train in fp32."
                )
        return losses

    # -- evaluation ------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mel L1 of the conversion path (content + F0 + speaker -> audio) on validation
        slices, as 5.0's validation; writes preview WAVs."""
        from svc_core.audio.io import save_wav

        a = self.config.audio
        n = min(self.tc.num_valid, len(self.valid_ds))
        step_dir = self.prev_dir / f"step_{self.state.step:08d}"
        ref_dir = self.prev_dir / "reference"
        previews = []
        devices = [self.device] if self.cuda else []
        # a fixed crop per slice: every evaluation scores the same audio
        items = [self.valid_ds.load(i, crop_seed=self.tc.seed + i) for i in range(n)]
        # previews are longer crops of the first slices (a training segment, ~0.3-0.5 s, is
        # too short to judge a voice by ear); the loss stays on the segments
        frames = max(
            self.tc.max_frames, round(self.params.preview_seconds * a.sample_rate / a.hop_length)
        )
        shown = [
            self.valid_ds.load(i, crop_seed=self.tc.seed + i, max_frames=frames)
            for i in range(min(n, self.params.num_previews))
        ]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.tc.seed)
            val, _ = evaluate(self.ts, self.ctx, items)
            _, audios = evaluate(self.ts, self.ctx, shown)
        for i, (item, audio) in enumerate(zip(shown, audios, strict=True)):
            name = f"{i:02d}_{_safe_name(item['id'])}.wav"
            ref = ref_dir / name
            if not ref.is_file():
                save_wav(ref, item["wav"].float().numpy(), a.sample_rate, subtype="PCM_16")
            p = save_wav(step_dir / name, audio[0].cpu().numpy(), a.sample_rate, subtype="PCM_16")
            previews.append(str(p.relative_to(self.out)))
        self._rotate_previews()
        s = self.state
        improved = s.best_val is None or val < s.best_val
        if improved:
            s.best_val, s.evals_since_best = val, 0
        else:
            s.evals_since_best += 1
        s.last_val = val
        self.last_eval_step = s.step
        row = {
            "kind": "valid",
            "step": s.step,
            "epoch": s.epoch,
            "val_mel": val,
            "best": improved,
            "seconds": round(s.train_seconds, 3),
            "time": time.time(),
        }
        self._metrics(row)
        self._event(
            Evaluated(
                step=s.step,
                epoch=s.epoch,
                val_mel=val,
                best=improved,
                seconds=row["seconds"],
                time=row["time"],
                previews=tuple(previews),
            )
        )
        return val

    def _rotate_previews(self) -> None:
        if not self.prev_dir.is_dir():
            return
        dirs = sorted(p for p in self.prev_dir.iterdir() if p.name.startswith("step_"))
        for p in dirs[: max(len(dirs) - self.params.keep_previews, 0)]:
            shutil.rmtree(p, ignore_errors=True)

    # -- loop ------------------------------------------------------------------------------

    def _log(self) -> None:
        if not self.window:
            return
        s = self.state
        losses = {k: float(np.mean(v)) for k, v in self.window.items()}
        self.last_losses = losses
        self.window = {}
        done = s.step - self.start_step
        frac, eta = self._fraction_and_eta()
        row = {
            "kind": "train",
            "step": s.step,
            "epoch": s.epoch,
            "losses": losses,
            "lr": self.ts.optim_g.param_groups[0]["lr"],
            "seconds": round(s.train_seconds, 3),
            "steps_per_s": done / max(self.elapsed(), 1e-9),
            "time": time.time(),
        }
        self._metrics(row)
        self._event(
            StepLogged(
                step=s.step,
                epoch=s.epoch,
                losses=losses,
                lr=row["lr"],
                seconds=row["seconds"],
                steps_per_s=row["steps_per_s"],
                time=row["time"],
                eta_s=eta,
                fraction=frac,
            )
        )

    def _end_epoch(self) -> None:
        # 5.0 decays the learning rate once per epoch
        self.ts.sched_g.step()
        self.ts.sched_d.step()
        self.state.epoch += 1
        self.state.batch = 0

    def _cancel(self) -> None:
        self._log()
        path = self.save()
        self._event(TrainCancelled(step=self.state.step, path=str(path)))
        raise Cancelled(
            f"training cancelled at step {self.state.step}; the checkpoint is saved and the "
            "next run on this folder continues from it"
        )

    def loop(self) -> TrainResult:
        s, t = self.state, self.tc
        self._event(
            TrainStarted(
                step=s.step,
                epoch=s.epoch,
                starts_from=s.starts_from(),
                resumed_from_step=self.resumed_from,
                device=str(self.device),
                train_slices=len(self.train_ds),
                notes=tuple(self.notes),
            )
        )
        # a private generator for DataLoader's base seed: iterating must not consume the
        # global RNG (resumed and straight runs create iterators at different points)
        loader_gen = torch.Generator()
        last_tick = time.monotonic()
        reason = self.limit_reached()
        while reason is None:
            if s.batch >= self.batches_per_epoch:  # (the dataset shrank since the checkpoint)
                self._end_epoch()
            loader_gen.manual_seed(t.seed + s.epoch)
            sampler = ResumableBatchSampler(
                len(self.train_ds), t.batch_size, t.seed, s.epoch, start_batch=s.batch
            )
            loader = torch.utils.data.DataLoader(
                self.train_ds,
                batch_sampler=sampler,
                collate_fn=collate,
                num_workers=self.num_workers,
                pin_memory=self.cuda,
                generator=loader_gen,
            )
            for batch in loader:
                if self.should_stop is not None and self.should_stop():
                    self._cancel()
                losses = self.train_step(batch)
                now = time.monotonic()
                s.train_seconds += now - last_tick
                last_tick = now
                s.step += 1
                s.batch += 1
                if s.batch >= self.batches_per_epoch:
                    self._end_epoch()
                for k, v in losses.items():
                    self.window.setdefault(k, []).append(v)
                if s.step % self.log_interval == 0:
                    self._log()
                best = False
                due_save = s.step % self.save_interval == 0
                if s.step % self.eval_interval == 0:
                    self.evaluate()
                    best = s.evals_since_best == 0
                    due_save = due_save or best
                if self.params.save_every_s is not None:
                    due_save |= time.monotonic() - self.last_save_time >= self.params.save_every_s
                if due_save:
                    self.save(best=best)
                if self.progress is not None:
                    self.progress("train", self._fraction_and_eta()[0])
                last_tick = time.monotonic()  # evaluation and saving are not training time
                reason = self.limit_reached()
                if reason is not None:
                    break
            if reason is None and self.should_stop is not None and self.should_stop():
                self._cancel()
        return self._finish(reason)

    def _finish(self, reason: str) -> TrainResult:
        s = self.state
        self._log()
        best = False
        if s.step > 0 and self.last_eval_step != s.step and s.step != self.resumed_from:
            self.evaluate()
            best = s.evals_since_best == 0
        self.save(best=best)
        best_path = self.ckpt_dir / ck.BEST_NAME
        result = TrainResult(
            out_dir=self.out,
            checkpoint=self.ckpt_dir / ck.LATEST_NAME,
            best_checkpoint=best_path if best_path.is_file() else None,
            step=s.step,
            epoch=s.epoch,
            stopped_by=reason,
            starts_from=s.starts_from(),
            resumed_from_step=self.resumed_from,
            best_val_mel=s.best_val,
            last_val_mel=s.last_val,
            losses=dict(self.last_losses),
            train_seconds=s.train_seconds,
            seconds=self.elapsed(),
            config_hash=self.hash,
            metrics_path=self.metrics_path,
            previews_dir=self.prev_dir,
            notes=tuple(self.notes),
        )
        if self.progress is not None:
            self.progress("train", 1.0)
        self._event(TrainEnded(result=result.to_dict()))
        return result


def train(
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: SVCConfig | str | os.PathLike,
    params: TrainParams,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    on_event: EventFn | None = None,
) -> TrainResult:
    """Train (or continue training) a voice model.

    Args:
        dataset_dir: a preprocessed dataset (``manifest.json``, see
            :mod:`svc_core.train.dataset`).
        out_dir: the run folder. If it holds a checkpoint of the same config, training
            continues from it exactly; a checkpoint of another config raises.
        config: an :class:`SVCConfig`, a built-in name (``"base"``, ``"tiny"``) or a YAML
            path. Its ``ppg_dim``/``vec_dim`` are taken from the dataset.
        params: limits and run options.
        progress: ``progress("train", fraction)`` after every step.
        should_stop: polled before every step; True saves a checkpoint and raises
            :class:`Cancelled` (see :class:`svc_core.train.signals.StopOnSignal` for SIGTERM).
        on_event: receives dicts with an ``"event"`` key: ``start``, ``step`` (every
            ``log_interval`` steps: step, epoch, losses, lr, eta_s, fraction, steps_per_s),
            ``eval`` (val_mel, best, previews), ``checkpoint``, ``cancelled``, ``end``.

    Returns:
        :class:`TrainResult`.

    Raises:
        BadInputError: bad dataset/params; IncompatibleError: checkpoint or base model of
        another config/format; Cancelled: ``should_stop()`` returned True (after saving);
        SvcError: the run diverged.
    """
    if not isinstance(config, SVCConfig):
        config = load_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _RunLock(out):
        run = _Run(Path(dataset_dir), out, config, params, progress, should_stop, on_event)
        try:
            return run.loop()
        except torch.OutOfMemoryError as exc:
            raise SvcError(
                f"out of GPU memory at step {run.state.step} (batch size "
                f"{run.tc.batch_size}, crops of {run.tc.max_frames} frames): lower "
                "train.batch_size or train.max_frames in the config; the last checkpoint is "
                "kept and the run continues from it"
            ) from exc
