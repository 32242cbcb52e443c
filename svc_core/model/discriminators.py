"""Multi-period (HiFi-GAN) and multi-resolution (UnivNet) discriminators.

Each sub-discriminator returns ``(feature_maps, score)``; the combined discriminator
returns the list over all of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import get_padding, weight_norm

DiscOutput = list[tuple[list[torch.Tensor], torch.Tensor]]


class PeriodDiscriminator(nn.Module):
    """Looks at every ``period``-th sample: the waveform folded to ``[B, 1, T/p, p]``."""

    def __init__(
        self,
        period: int,
        channels: tuple[int, ...],
        kernel_size: int = 5,
        stride: int = 3,
        slope: float = 0.1,
    ):
        super().__init__()
        self.period = period
        self.slope = slope
        layers = []
        c_in = 1
        for i, c in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1
            layers.append(
                weight_norm(
                    nn.Conv2d(
                        c_in, c, (kernel_size, 1), (s, 1), padding=(get_padding(kernel_size), 0)
                    )
                )
            )
            c_in = c
        self.convs = nn.ModuleList(layers)
        self.conv_post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x ``[B, 1, T]``."""
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), mode="reflect" if n_pad < t else "constant")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return fmap, torch.flatten(x, 1)


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over a magnitude spectrogram at one STFT resolution."""

    def __init__(self, resolution: tuple[int, int, int], channels: int = 32, slope: float = 0.1):
        super().__init__()
        self.n_fft, self.hop, self.win = resolution
        self.slope = slope
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        c = channels
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, c, (3, 9), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
                weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
            ]
        )
        self.conv_post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x ``[B, 1, T]``."""
        pad = (self.n_fft - self.hop) // 2
        y = F.pad(x.float(), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            y, self.n_fft, self.hop, self.win, self.window, center=False, return_complex=True
        )
        h = spec.abs().unsqueeze(1).to(x.dtype)  # [B, 1, F, frames]
        fmap = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.slope)
            fmap.append(h)
        h = self.conv_post(h)
        fmap.append(h)
        return fmap, torch.flatten(h, 1)


class Discriminator(nn.Module):
    """All period discriminators followed by all resolution discriminators."""

    def __init__(
        self,
        periods: tuple[int, ...],
        mpd_channels: tuple[int, ...],
        resolutions: tuple[tuple[int, int, int], ...],
        mrd_channels: int,
        slope: float = 0.1,
    ):
        super().__init__()
        self.discs = nn.ModuleList(
            [PeriodDiscriminator(p, mpd_channels, slope=slope) for p in periods]
            + [ResolutionDiscriminator(tuple(r), mrd_channels, slope) for r in resolutions]
        )

    def forward(self, x: torch.Tensor) -> DiscOutput:
        """x ``[B, 1, T]`` -> list of ``(feature_maps, score)``."""
        return [d(x) for d in self.discs]
