"""Model and training configuration: frozen dataclasses, loaded from YAML once at the edge.

A config has three sections, mirrored by ``svc_core/configs/*.yaml``:

- ``audio``: sample rate, STFT/mel settings and the training segment length;
- ``model``: generator (prior/posterior encoders, flow, NSF decoder) and discriminator sizes;
- ``train``: optimiser, loss weights, intervals, precision.

``load_config("tiny" | "base" | path)`` reads a YAML file; unknown keys are an error (a typo
must not silently fall back to a default). :func:`config_hash` identifies a config for
checkpoint compatibility.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from svc_core.errors import BadInputError

BUILTIN_CONFIGS = ("base", "tiny")


@dataclass(frozen=True)
class AudioConfig:
    """Signal settings shared by data, model and losses."""

    sample_rate: int = 32000
    hop_length: int = 320  # samples per model frame (10 ms at 32 kHz)
    n_fft: int = 1024
    win_length: int = 1024
    n_mels: int = 100
    f_min: float = 50.0
    f_max: float = 16000.0
    segment_size: int = 8000  # samples decoded per training item (a multiple of hop_length)

    def __post_init__(self) -> None:
        if self.segment_size % self.hop_length:
            raise BadInputError("audio.segment_size must be a multiple of audio.hop_length")
        if (self.n_fft - self.hop_length) % 2:
            raise BadInputError("audio.n_fft - audio.hop_length must be even")
        if self.win_length > self.n_fft:
            raise BadInputError("audio.win_length must not exceed audio.n_fft")

    @property
    def segment_frames(self) -> int:
        return self.segment_size // self.hop_length

    @property
    def spec_channels(self) -> int:
        return self.n_fft // 2 + 1


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the so-VITS-svc 5.0 generator and discriminators."""

    # inputs; a content dimension of 0 means that feature is not used
    ppg_dim: int = 1280  # whisper encoder width (large-v2/v3: 1280, medium: 1024, tiny: 384)
    vec_dim: int = 256  # HuBERT-soft
    spk_dim: int = 256  # GE2E speaker embedding
    gin_channels: int = 256
    ppg_noise: float = 1.0  # training-time Gaussian perturbation of the content features:
    vec_noise: float = 2.0  # keeps the prior from copying the source singer's timbre
    # prior ("text") encoder: relative-position transformer on content + pitch embedding
    inter_channels: int = 192
    hidden_channels: int = 192
    filter_channels: int = 640
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    attn_window: int = 4
    # posterior encoder (WaveNet on the linear spectrogram)
    posterior_layers: int = 16
    posterior_kernel: int = 5
    # normalising flow (mean-only residual coupling)
    n_flows: int = 4
    flow_layers: int = 4
    flow_kernel: int = 5
    # NSF decoder (BigVGAN AMP blocks with anti-aliased SnakeBeta)
    upsample_input: int = 192
    upsample_initial_channel: int = 320
    upsample_rates: tuple[int, ...] = (5, 4, 4, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (15, 8, 8, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    harmonic_num: int = 10
    # discriminators: MRD + MPD + MSD (5.0's sizes)
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (64, 128, 256, 512, 1024)
    mpd_kernel_size: int = 5
    mpd_stride: int = 3
    mrd_resolutions: tuple[tuple[int, int, int], ...] = (
        (1024, 120, 600),
        (2048, 240, 1200),
        (4096, 480, 2400),
        (512, 50, 240),
    )
    mrd_channels: int = 32
    msd_channels: tuple[int, ...] = (16, 64, 256, 1024, 1024, 1024)
    lrelu_slope: float = 0.2  # MRD and MPD (the MSD keeps 0.1, as 5.0)

    def __post_init__(self) -> None:
        if self.ppg_dim <= 0 and self.vec_dim <= 0:
            raise BadInputError("model: at least one of ppg_dim and vec_dim must be > 0")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise BadInputError("model.upsample_rates and upsample_kernel_sizes differ in length")
        for u, k in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if k < u or (k - u) % 2:
                raise BadInputError(f"model: upsample kernel {k} does not fit rate {u}")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise BadInputError("model.resblock_kernel_sizes and dilation_sizes differ in length")
        if self.hidden_channels % self.n_heads:
            raise BadInputError("model.hidden_channels must be divisible by n_heads")
        if self.inter_channels % 2:
            raise BadInputError("model.inter_channels must be even (the flow splits it)")
        if len(self.msd_channels) != 6:
            raise BadInputError("model.msd_channels must list six widths")
        for i in range(1, 5):
            g = max(1, self.msd_channels[i - 1] // 4)
            if self.msd_channels[i - 1] % g or self.msd_channels[i] % g:
                raise BadInputError(
                    "model.msd_channels: each width must be divisible by the last / 4"
                )

    @property
    def upsample_factor(self) -> int:
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, loss weights and bookkeeping intervals (in steps).

    The defaults are so-vits-svc 5.0's recipe (``configs/base.yaml``, ``vits_extend/train.py``):
    AdamW 5e-5, betas (0.8, 0.99), generator gradients accumulated over 2 steps (the
    discriminator steps every batch at lr / 2), lr decay 0.999875 per epoch, and the loss
    ``adv + 2·fm + mel + 9·stft + 0.2·kl_f + 0.2·0.5·kl_r + 2·spk``.
    """

    seed: int = 1234
    batch_size: int = 8
    learning_rate: float = 5e-5
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # per epoch, as so-vits-svc 5.0
    accum_step: int = 2  # generator optimiser steps every accum_step batches
    grad_clip: float = 0.0  # max gradient norm; 0 = off (5.0 does not clip)
    c_mel: float = 1.0
    c_stft: float = 9.0
    c_kl: float = 0.2
    c_kl_r: float = 0.5  # the reverse KL's weight relative to c_kl
    c_fm: float = 2.0
    c_spk: float = 2.0
    max_frames: int = 400  # longer slices are cropped at random (4 s at 100 frames/s)
    num_workers: int = 2
    precision: str = "bf16"  # "bf16" | "fp16" | "fp32"; mixed precision is used on CUDA only
    log_interval: int = 50
    eval_interval: int = 1000
    save_interval: int = 1000
    keep_last: int = 3
    num_valid: int = 8  # validation slices scored per evaluation
    deterministic: bool = False  # on CUDA; CPU training is always deterministic

    def __post_init__(self) -> None:
        if self.precision not in ("bf16", "fp16", "fp32"):
            raise BadInputError("train.precision must be one of bf16, fp16, fp32")
        for name in (
            "batch_size",
            "accum_step",
            "log_interval",
            "eval_interval",
            "save_interval",
            "keep_last",
        ):
            if getattr(self, name) < 1:
                raise BadInputError(f"train.{name} must be >= 1")


@dataclass(frozen=True)
class SVCConfig:
    """The whole configuration of one voice model and its training run.

    Built-ins (parameter counts from ``bench/train_bench.py``):

    - ``base``: so-VITS-svc 5.0 sizes, 32 kHz, hop 320, 8000-sample segments; with whisper
      large PPG (1280) + HuBERT-soft (256): generator 30,687,766 and discriminator
      41,480,306 parameters.
    - ``tiny``: the same architecture at toy sizes for tests, 16 kHz, hop 64; with
      ppg 32 / vec 16: generator 63,640 and discriminator 4,384 parameters.
    """

    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.model.upsample_factor != self.audio.hop_length:
            raise BadInputError(
                f"model.upsample_rates multiply to {self.model.upsample_factor}, "
                f"but audio.hop_length is {self.audio.hop_length}"
            )
        if self.train.max_frames < self.audio.segment_frames:
            raise BadInputError("train.max_frames must be >= audio.segment_size / hop_length")

    def with_content_dims(self, ppg_dim: int, vec_dim: int) -> SVCConfig:
        """A copy whose content input sizes match a dataset's features."""
        model = dataclasses.replace(self.model, ppg_dim=ppg_dim, vec_dim=vec_dim)
        return dataclasses.replace(self, model=model)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(x: Any) -> Any:
    """Tuples -> lists, recursively: the JSON/YAML view of a config."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _tuples(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return tuple(_tuples(v) for v in x)
    return x


def _section(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise BadInputError(f"config section '{where}' has unknown keys: {', '.join(unknown)}")
    return cls(**{k: _tuples(v) for k, v in data.items()})


def config_from_dict(data: dict[str, Any], name: str = "custom") -> SVCConfig:
    """Build a config from its dict form (as in YAML or a checkpoint)."""
    if not isinstance(data, dict):
        raise BadInputError("a config must be a mapping with audio/model/train sections")
    unknown = sorted(set(data) - {"audio", "model", "train", "name"})
    if unknown:
        raise BadInputError(f"config has unknown sections: {', '.join(unknown)}")
    try:
        return SVCConfig(
            audio=_section(AudioConfig, data.get("audio"), "audio"),
            model=_section(ModelConfig, data.get("model"), "model"),
            train=_section(TrainConfig, data.get("train"), "train"),
            name=str(data.get("name", name)),
        )
    except TypeError as exc:  # a wrongly typed value that a constructor choked on
        raise BadInputError(f"invalid config: {exc}") from exc


def load_config(name_or_path: str | Path) -> SVCConfig:
    """Load a built-in config by name (``"base"``, ``"tiny"``) or a YAML file by path."""
    import yaml

    key = str(name_or_path)
    if key in BUILTIN_CONFIGS:
        text = resources.files("svc_core").joinpath("configs", f"{key}.yaml").read_text("utf-8")
        default_name = key
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise BadInputError(
                f"config '{key}' is neither a built-in ({', '.join(BUILTIN_CONFIGS)}) nor a file"
            )
        text = path.read_text("utf-8")
        default_name = path.stem
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"config '{key}' is not valid YAML: {exc}") from exc
    return config_from_dict(data or {}, name=default_name)


def save_config(config: SVCConfig, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), "utf-8")


# Bookkeeping fields: changing them between sessions of one run does not change the model or
# the stream of batches, so they stay out of the hash (a user may save more often on resume).
_HASH_EXEMPT_TRAIN = ("log_interval", "eval_interval", "save_interval", "keep_last", "num_workers")


def config_hash(config: SVCConfig) -> str:
    """A stable sha256 of everything that shapes the model and the training stream.

    Two configs with the same hash can continue each other's checkpoints: the name and the
    bookkeeping intervals (``log/eval/save_interval``, ``keep_last``, ``num_workers``) are left out.
    """
    d = config.to_dict()
    d.pop("name", None)  # renaming a config does not change the run
    for key in _HASH_EXEMPT_TRAIN:
        d["train"].pop(key, None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def model_hash(config: SVCConfig) -> str:
    """A sha256 of the audio + model sections only: what decides whether weights fit."""
    d = {"audio": config.to_dict()["audio"], "model": config.to_dict()["model"]}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()
