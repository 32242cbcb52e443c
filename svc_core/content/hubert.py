"""HuBERT-soft units: 256-d soft speech units of bshall/hubert's ``HubertSoft`` at 50 frames/s.

Checkpoint: the official ``hubert-soft-0d54a1f4.pt`` (a state dict whose keys carry DDP's
``module.`` prefix) or the later release layout ``{"hubert": state_dict, ...}``; both are read.
The module here is written with the same parameter names as bshall's ``Hubert`` (feature
extractor conv stack → feature projection → weight-normed positional conv → LayerNorm →
12 post-LN transformer layers → ``proj`` to 256), so the official weights load strictly. Its
sizes are read from the checkpoint's tensor shapes, so a tiny test checkpoint in the same key
layout loads through the same code.

Frames: the conv stack has a receptive field of 400 samples and a stride of 320. As in
bshall's ``units()``, the audio is padded by 40 samples on each side, so frame ``i`` is
centred on samples ``[320 i, 320 (i + 1))``; the tail is zero-padded to a whole hop, giving
``N = ceil(T / 320)`` frames.

Long audio: attention memory grows with the square of the length, so audio is encoded in
windows of ``window_s`` seconds, each with ``context_s`` of real audio on both sides that is
encoded and then dropped, so that window edges do not see an artificial boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svc_core.content.base import (
    CONTENT_HOP,
    CONTENT_SR,
    ContentEncoder,
    cached_model,
    check_audio_16k,
    checkpoint_path,
    content_frames,
    load_error_detail,
    load_torch_checkpoint,
    precision_dtype,
)
from svc_core.errors import BadInputError, IncompatibleError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import resolve_device

# (kernel, stride) of bshall's FeatureExtractor conv0..conv6: total stride 320, field 400.
CONV_LAYERS = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))
RECEPTIVE_FIELD = 400
EDGE_PAD = (RECEPTIVE_FIELD - CONTENT_HOP) // 2  # 40 samples each side, as HubertSoft.units()


@dataclass(frozen=True)
class HubertSize:
    """Sizes of a HuBERT(-soft) model; defaults are HuBERT-Base / the official checkpoint."""

    conv_dim: int = 512
    hidden: int = 768
    heads: int = 12
    ffn: int = 3072
    layers: int = 12
    pos_kernel: int = 128
    pos_groups: int = 16
    out_dim: int = 256
    num_labels: int = 100


class _FeatureExtractor(nn.Module):
    def __init__(self, conv_dim: int):
        super().__init__()
        for i, (k, s) in enumerate(CONV_LAYERS):
            cin = 1 if i == 0 else conv_dim
            self.add_module(f"conv{i}", nn.Conv1d(cin, conv_dim, k, s, bias=False))
        self.norm0 = nn.GroupNorm(conv_dim, conv_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 1, T]`` → ``[B, conv_dim, (T - 400) // 320 + 1]``."""
        x = F.gelu(self.norm0(self.conv0(x)))
        for i in range(1, len(CONV_LAYERS)):
            x = F.gelu(getattr(self, f"conv{i}")(x))
        return x


class _FeatureProjection(nn.Module):
    def __init__(self, conv_dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(conv_dim)
        self.projection = nn.Linear(conv_dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.norm(x))


class _WeightNormConv1d(nn.Module):
    """A grouped Conv1d with weight normalisation over dim 2, stored as ``weight_g``/``weight_v``.

    Written out rather than ``nn.utils.weight_norm`` (deprecated) or its parametrization
    (different state-dict names): the official checkpoint stores ``weight_g``/``weight_v``.
    """

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.padding = kernel // 2
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        norm = self.weight_v.norm(dim=(0, 1), keepdim=True)
        weight = self.weight_v * (self.weight_g / norm)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _PositionalConvEmbedding(nn.Module):
    def __init__(self, hidden: int, kernel: int, groups: int):
        super().__init__()
        self.conv = _WeightNormConv1d(hidden, kernel, groups)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, N, C]`` → ``[B, N, C]`` (an even kernel yields one extra frame, dropped)."""
        y = self.conv(x.transpose(1, 2))
        return F.gelu(y[:, :, : x.shape[1]]).transpose(1, 2)


class _TransformerEncoder(nn.Module):
    def __init__(self, size: HubertSize):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                size.hidden, size.heads, size.ffn, activation="gelu", batch_first=True
            )
            for _ in range(size.layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class HubertSoftModel(nn.Module):
    """bshall's HubertSoft (inference part) with the official parameter names.

    Args:
        size: model sizes (HuBERT-Base by default).
    """

    def __init__(self, size: HubertSize | None = None):
        super().__init__()
        size = size or HubertSize()
        if size.hidden % size.heads:
            raise IncompatibleError(
                f"HuBERT width {size.hidden} is not divisible by {size.heads} heads."
            )
        self.size = size
        self.feature_extractor = _FeatureExtractor(size.conv_dim)
        self.feature_projection = _FeatureProjection(size.conv_dim, size.hidden)
        self.positional_embedding = _PositionalConvEmbedding(
            size.hidden, size.pos_kernel, size.pos_groups
        )
        self.norm = nn.LayerNorm(size.hidden)
        self.encoder = _TransformerEncoder(size)
        self.proj = nn.Linear(size.hidden, size.out_dim)
        # Training-only parameters, kept so the official state dict loads strictly.
        self.masked_spec_embed = nn.Parameter(torch.zeros(size.hidden))
        self.label_embedding = nn.Embedding(size.num_labels, size.out_dim)

    def forward(self, wav: Tensor) -> Tensor:
        """Edge-padded audio ``[B, 1, T]`` → soft units ``[B, (T - 400) // 320 + 1, out]``."""
        x = self.feature_extractor(wav)
        x = self.feature_projection(x.transpose(1, 2))
        x = x + self.positional_embedding(x)
        x = self.encoder(self.norm(x))
        return self.proj(x)

    def units(self, wav: Tensor) -> Tensor:
        """bshall's ``HubertSoft.units``: ``[B, 1, T]`` → ``[B, ~T // 320, out]``."""
        return self.forward(F.pad(wav, (EDGE_PAD, EDGE_PAD)))


# --- loading -------------------------------------------------------------------------------

_LAYER_RE = re.compile(r"^encoder\.layers\.(\d+)\.")


def hubert_state_dict(ckpt: Any, path) -> dict[str, Tensor]:
    """The model state dict from either official layout, with DDP's ``module.`` prefix removed."""
    state = ckpt.get("hubert", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise IncompatibleError(
            f"{path} is not a HuBERT-soft checkpoint (expected a state dict of tensors, as in "
            "hubert-soft-0d54a1f4.pt)."
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def size_from_state(state: dict[str, Tensor], path, heads: int | None = None) -> HubertSize:
    """Read the model sizes from tensor shapes (heads cannot be seen: default ``hidden // 64``)."""
    try:
        proj_w = state["feature_projection.projection.weight"]  # [hidden, conv_dim]
        pos_v = _pos_conv_tensors(state)[1]  # [hidden, hidden / groups, kernel]
        ffn = state["encoder.layers.0.linear1.weight"].shape[0]
        out_dim = state["proj.weight"].shape[0]
    except KeyError as exc:
        raise IncompatibleError(
            f"{path} is not a HuBERT-soft checkpoint: weight {exc.args[0]!r} is missing."
        ) from None
    hidden, conv_dim = proj_w.shape
    layers = 1 + max(int(m.group(1)) for k in state if (m := _LAYER_RE.match(k)))
    labels = state["label_embedding.weight"].shape[0] if "label_embedding.weight" in state else 100
    return HubertSize(
        conv_dim=int(conv_dim),
        hidden=int(hidden),
        heads=heads if heads is not None else max(1, int(hidden) // 64),
        ffn=int(ffn),
        layers=layers,
        pos_kernel=int(pos_v.shape[2]),
        pos_groups=int(hidden) // int(pos_v.shape[1]),
        out_dim=int(out_dim),
        num_labels=int(labels),
    )


def _pos_conv_tensors(state: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(weight_g, weight_v)`` from the old weight_norm names or the parametrization names."""
    old = ("positional_embedding.conv.weight_g", "positional_embedding.conv.weight_v")
    new = (
        "positional_embedding.conv.parametrizations.weight.original0",
        "positional_embedding.conv.parametrizations.weight.original1",
    )
    for g, v in (old, new):
        if g in state and v in state:
            return state[g], state[v]
    raise KeyError(old[1])


def load_hubert_soft(path, device: str = "cpu", heads: int | None = None) -> HubertSoftModel:
    """Build and load a HuBERT-soft checkpoint (uncached).

    Args:
        path: ``hubert-soft-*.pt``.
        device: torch device string.
        heads: attention heads; ``None`` = ``hidden // 64`` (12 for the official model).

    Raises:
        IncompatibleError: not a torch file, not the HuBERT-soft layout, or mismatched weights.
    """
    state = hubert_state_dict(load_torch_checkpoint(path, "a HuBERT-soft model"), path)
    size = size_from_state(state, path, heads)
    g, v = _pos_conv_tensors(state)
    state = {k: t for k, t in state.items() if ".parametrizations." not in k}
    state["positional_embedding.conv.weight_g"] = g
    state["positional_embedding.conv.weight_v"] = v
    model = HubertSoftModel(size)
    # Training-only tensors may be absent from a stripped checkpoint; all others must match.
    optional = {"masked_spec_embed", "label_embedding.weight"}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise IncompatibleError(
            f"{path}: the HuBERT-soft weights do not fit its layout: {load_error_detail(exc)}"
        ) from exc
    missing = [k for k in result.missing_keys if k not in optional]
    if missing or result.unexpected_keys:
        raise IncompatibleError(
            f"{path} is not a HuBERT-soft checkpoint: missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}."
        )
    return model.eval().requires_grad_(False).to(device)


# --- the encoder backend -------------------------------------------------------------------


@dataclass(frozen=True)
class HubertParams:
    """Options of the HuBERT-soft encoder.

    Attributes:
        checkpoint: path of ``hubert-soft-0d54a1f4.pt`` (or a file in the same layout).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        precision: ``fp32``, or ``fp16`` (CUDA only).
        window_s: seconds of audio per forward pass (a multiple of 0.02 s).
        context_s: seconds of neighbouring audio encoded on each side and dropped.
        heads: attention heads (``None``: ``hidden // 64`` = 12 for the official model).
    """

    checkpoint: str
    device: str = "cpu"
    precision: str = "fp32"
    window_s: float = 20.0
    context_s: float = 1.0
    heads: int | None = None


def _hops(seconds: float, what: str, allow_zero: bool = False) -> int:
    hops = round(seconds * CONTENT_SR / CONTENT_HOP)
    if (hops < 0 or (hops == 0 and not allow_zero)) or abs(
        hops * CONTENT_HOP - seconds * CONTENT_SR
    ) > 1e-6 * CONTENT_SR:
        raise BadInputError(f"{what}={seconds} must be a positive multiple of 0.02 s.")
    return hops


class HubertSoftVec(ContentEncoder):
    """HuBERT-soft units ("vec"): ``[ceil(T / 320), 256]`` at 50 frames/s."""

    name = "hubert-soft"
    params_cls = HubertParams

    def __init__(self, params: HubertParams):
        self.params = params
        self.device = resolve_device(params.device)
        self.dtype = precision_dtype(params.precision, self.device)
        self.window_hops = _hops(params.window_s, "window_s")
        self.context_hops = _hops(params.context_s, "context_s", allow_zero=True)
        path = checkpoint_path(params.checkpoint)

        def load() -> HubertSoftModel:
            return load_hubert_soft(path, self.device, params.heads).to(self.dtype)

        self.model: HubertSoftModel = cached_model(
            ("hubert-soft", self.device, str(self.dtype), params.heads), path, load
        )

    @property
    def dim(self) -> int:
        return self.model.size.out_dim

    @torch.inference_mode()
    def encode(
        self,
        audio_16k: np.ndarray,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        audio = check_audio_16k(audio_16k)
        total = content_frames(audio.shape[0])
        # Global grid: frame j reads padded[320 j : 320 j + 400], centred on [320 j, 320 j + 320).
        tail = total * CONTENT_HOP - audio.shape[0]
        padded = torch.from_numpy(np.pad(audio, (EDGE_PAD, EDGE_PAD + tail)))
        out: list[np.ndarray] = []
        starts = list(range(0, total, self.window_hops))
        for n, a in enumerate(starts):
            check_stop(should_stop)
            b = min(a + self.window_hops, total)
            lo = max(0, a - self.context_hops)
            hi = min(total, b + self.context_hops)
            seg = padded[lo * CONTENT_HOP : hi * CONTENT_HOP + 2 * EDGE_PAD]
            seg = seg.to(self.device, self.dtype)[None, None, :]
            units = self.model(seg)[0]  # [hi - lo, out]
            out.append(units[a - lo : b - lo].float().cpu().numpy())
            if progress is not None:
                progress("content", (n + 1) / len(starts))
        features = np.concatenate(out, axis=0).astype(np.float32, copy=False)
        assert features.shape[0] == total, (features.shape, total)
        return features
