"""so-vits-svc 5.0's discriminators: multi-resolution (MRD), multi-period (MPD) and scale (MSD).

Parameter names are 5.0's (``vits_decoder/{mrd,mpd,msd,discriminator}.py``): ``MRD``,
``MPD``, ``MSD``. The output is a list of ``(feature maps, flattened score)`` pairs in 5.0's
order: one per resolution, one per period, then the scale discriminator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import weight_norm

DiscOutput = list[tuple[list[torch.Tensor], torch.Tensor]]


def _features_and_score(
    convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor, slope: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Leaky-ReLU conv stack: every layer's output is a feature map, the last one's the score."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), slope)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return fmap, torch.flatten(x, 1, -1)


class DiscriminatorR(nn.Module):
    """2-D convolutions over the magnitude STFT at one resolution (rectangular window)."""

    def __init__(self, resolution: tuple[int, int, int], channels: int = 32, slope: float = 0.2):
        super().__init__()
        self.resolution, self.slope = tuple(resolution), slope
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

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, T]`` -> ``[B, F, frames]`` (5.0 gives torch.stft no window: all ones)."""
        n_fft, hop, win = self.resolution
        pad = (n_fft - hop) // 2
        x = F.pad(x, (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x.float(), n_fft=n_fft, hop_length=hop, win_length=win, center=False,
            window=torch.ones(win, device=x.device), return_complex=True,
        )  # fmt: skip
        return spec.abs()

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self.spectrogram(x).unsqueeze(1)
        return _features_and_score(self.convs, self.conv_post, x, self.slope)


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, resolutions, channels: int = 32, slope: float = 0.2):
        super().__init__()
        self.discriminators = nn.ModuleList(DiscriminatorR(r, channels, slope) for r in resolutions)

    def forward(self, x: torch.Tensor) -> DiscOutput:
        return [d(x) for d in self.discriminators]


class DiscriminatorP(nn.Module):
    """2-D convolutions over the signal folded by one period."""

    def __init__(
        self,
        period: int,
        channels: tuple[int, ...] = (64, 128, 256, 512, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        slope: float = 0.2,
    ):
        super().__init__()
        self.period, self.slope = period, slope
        chans = (1, *channels)
        pad = (kernel_size // 2, 0)
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(
                    chans[i],
                    chans[i + 1],
                    (kernel_size, 1),
                    (stride if i < len(channels) - 1 else 1, 1),
                    padding=pad,
                )
            )  # fmt: skip
            for i in range(len(channels))
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)
        return _features_and_score(self.convs, self.conv_post, x, self.slope)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods, channels, kernel_size: int, stride: int, slope: float):
        super().__init__()
        self.discriminators = nn.ModuleList(
            DiscriminatorP(p, tuple(channels), kernel_size, stride, slope) for p in periods
        )

    def forward(self, x: torch.Tensor) -> DiscOutput:
        return [d(x) for d in self.discriminators]


class ScaleDiscriminator(nn.Module):
    """1-D grouped convolutions on the waveform (MelGAN's scale discriminator, one scale).

    ``channels`` default to 5.0's (16, 64, 256, 1024, 1024, 1024); the grouped layers use
    ``in_channels / 4`` groups, as 5.0's 4, 16, 64 and 256.
    """

    def __init__(self, channels: tuple[int, ...] = (16, 64, 256, 1024, 1024, 1024)):
        super().__init__()
        if len(channels) != 6:
            raise ValueError("the scale discriminator has six convolutions")
        c = channels
        layers = [nn.Conv1d(1, c[0], 15, 1, padding=7)]
        for i in range(1, 5):
            layers.append(
                nn.Conv1d(c[i - 1], c[i], 41, 4, groups=max(1, c[i - 1] // 4), padding=20)
            )
        layers.append(nn.Conv1d(c[4], c[5], 5, 1, padding=2))
        self.convs = nn.ModuleList(weight_norm(m) for m in layers)
        self.conv_post = weight_norm(nn.Conv1d(c[5], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        return [_features_and_score(self.convs, self.conv_post, x, 0.1)]


class Discriminator(nn.Module):
    """MRD + MPD + MSD of waveforms ``[B, 1, T]``."""

    def __init__(
        self,
        mrd_resolutions,
        mrd_channels: int,
        mpd_periods,
        mpd_channels,
        mpd_kernel_size: int,
        mpd_stride: int,
        msd_channels,
        slope: float,
    ):
        super().__init__()
        # 5.0's MRD reads its slope from the MPD section; both are 0.2 in base.yaml
        self.MRD = MultiResolutionDiscriminator(mrd_resolutions, mrd_channels, slope)
        self.MPD = MultiPeriodDiscriminator(
            mpd_periods, mpd_channels, mpd_kernel_size, mpd_stride, slope
        )
        self.MSD = ScaleDiscriminator(tuple(msd_channels))

    def forward(self, x: torch.Tensor) -> DiscOutput:
        return self.MRD(x) + self.MPD(x) + self.MSD(x)
