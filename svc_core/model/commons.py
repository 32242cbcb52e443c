"""Small tensor helpers shared by the model's modules."""

from __future__ import annotations

import math

import torch
from torch import nn

F0_BINS = 256
F0_MIN = 50.0
F0_MAX = 1100.0
_MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN / 700.0)
_MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX / 700.0)


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``[B]`` lengths -> ``[B, T]`` boolean mask, True inside each sequence."""
    if max_len is None:
        max_len = int(lengths.max())
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def f0_to_coarse(f0: torch.Tensor) -> torch.Tensor:
    """Quantise F0 (Hz, 0 = unvoiced) into 255 mel-spaced bins for the pitch embedding.

    Unvoiced frames and everything below 50 Hz map to bin 1; 1100 Hz and above to 255
    (bin 0 is unused, as in so-vits-svc 5.0, so its embedding table keeps 256 rows).

    Args:
        f0: ``[...]`` Hz.

    Returns:
        ``[...]`` int64 in ``1..255``.
    """
    f0_mel = 1127.0 * torch.log1p(f0.float().clamp(min=0.0) / 700.0)
    scaled = (f0_mel - _MEL_MIN) * (F0_BINS - 2) / (_MEL_MAX - _MEL_MIN) + 1.0
    scaled = torch.where(f0_mel > 0, scaled, torch.ones_like(scaled))
    return (scaled.clamp(1.0, F0_BINS - 1.0) + 0.5).long().clamp(1, F0_BINS - 1)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``size`` steps from each row of ``x`` ``[B, C, T]`` (or ``[B, T]``) at ``starts``."""
    idx = starts[:, None] + torch.arange(size, device=x.device)[None, :]  # [B, size]
    if x.dim() == 2:
        return torch.gather(x, 1, idx)
    return torch.gather(x, 2, idx[:, None, :].expand(-1, x.size(1), -1))


def rand_slice_starts(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """Random start frames so that ``[start, start + size)`` lies inside each sequence.

    Uses the global torch RNG (saved in checkpoints) so that resume is exact.
    """
    span = (lengths - size).clamp(min=0) + 1
    r = torch.rand(lengths.shape, device=lengths.device)
    return (r * span).long().clamp(max=span - 1)


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def init_conv_weights(m: nn.Module, std: float = 0.01) -> None:
    """HiFi-GAN's initialisation for the decoder's convolutions."""
    if isinstance(m, nn.Conv1d | nn.ConvTranspose1d):
        nn.init.normal_(m.weight, 0.0, std)


def weight_norm(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.weight_norm(module)
