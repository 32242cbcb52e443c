"""NSF-HiFi-GAN decoder: a harmonic-plus-noise source built from F0 is injected at every
upsampling stage of a HiFi-GAN generator, so that pitch is exact by construction and the
network only has to shape the timbre.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import get_padding, init_conv_weights, weight_norm


class SineSource(nn.Module):
    """Harmonic source: sines at ``k * F0`` (k = 1..harmonic_num+1) in voiced samples,
    Gaussian noise in unvoiced ones, merged into one excitation by a learned linear layer.

    Args:
        sample_rate: output rate.
        harmonic_num: overtones above the fundamental.
        sine_amp: amplitude of each sine.
        noise_std: noise added in voiced regions (unvoiced noise is ``sine_amp / 3``).
    """

    def __init__(
        self,
        sample_rate: int,
        harmonic_num: int = 10,
        sine_amp: float = 0.1,
        noise_std: float = 0.003,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.dim = harmonic_num + 1
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.merge = nn.Linear(self.dim, 1)

    @torch.no_grad()
    def harmonics(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 ``[B, N]`` (Hz per sample) -> ``[B, N, harmonic_num + 1]`` sines + noise."""
        f0 = f0.float()
        mult = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
        freqs = f0[..., None] * mult  # [B, N, D]
        # phase increments in cycles; wrap each step to [0, 1) and accumulate in float64 so
        # that minutes of audio do not lose phase precision
        inc = (freqs / self.sample_rate) % 1.0
        init = torch.rand(f0.shape[0], 1, self.dim, device=f0.device, dtype=f0.dtype)
        init[:, :, 0] = 0.0  # the fundamental starts at phase 0, overtones at random
        phase = torch.cumsum(inc.double(), dim=1) + init.double()
        sines = torch.sin(2 * math.pi * (phase % 1.0)).to(f0.dtype) * self.sine_amp
        sines = sines * (freqs < self.sample_rate / 2)  # no aliased overtones above Nyquist
        uv = (f0 > 0).to(f0.dtype)[..., None]
        noise_amp = uv * self.noise_std + (1.0 - uv) * self.sine_amp / 3.0
        noise = noise_amp * torch.randn_like(sines)
        return sines * uv + noise

    def forward(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 ``[B, N]`` Hz at the output rate -> excitation ``[B, 1, N]``."""
        h = self.harmonics(f0).to(self.merge.weight.dtype)
        return torch.tanh(self.merge(h)).transpose(1, 2)


class SpeakerAdapter(nn.Module):
    """Conditional layer norm: normalise over channels, then scale/shift from the speaker."""

    def __init__(self, spk_dim: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Linear(spk_dim, channels)
        self.bias = nn.Linear(spk_dim, channels)
        # identity at start
        nn.init.zeros_(self.scale.weight)
        nn.init.ones_(self.scale.bias)
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.bias.bias)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, spk ``[B, S]`` -> ``[B, C, T]``."""
        mean = x.mean(dim=1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.scale(spk)[..., None] + self.bias(spk)[..., None]


class ResBlock(nn.Module):
    """HiFi-GAN residual block (type 1): pairs of dilated and plain convolutions."""

    def __init__(
        self, channels: int, kernel_size: int, dilations: tuple[int, ...], slope: float = 0.1
    ):
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)
                )
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size))
            )
            for _ in dilations
        )
        self.apply(init_conv_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, self.slope)), self.slope))
            x = x + xt
        return x


class NSFGenerator(nn.Module):
    """Latent frames + F0 + speaker -> waveform.

    Output length is exactly ``frames * prod(upsample_rates)``.
    """

    def __init__(
        self,
        sample_rate: int,
        spk_dim: int,
        in_channels: int,
        upsample_initial_channel: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        harmonic_num: int = 10,
        slope: float = 0.1,
    ):
        super().__init__()
        self.slope = slope
        self.hop = int(math.prod(upsample_rates))
        self.num_kernels = len(resblock_kernel_sizes)
        self.adapter = SpeakerAdapter(spk_dim, in_channels)
        self.source = SineSource(sample_rate, harmonic_num)
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, upsample_initial_channel, 7, padding=3))
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            out_ch = upsample_initial_channel // (2 ** (i + 1))
            up = nn.ConvTranspose1d(ch, out_ch, k, u, padding=(k - u) // 2)
            init_conv_weights(up)
            self.ups.append(weight_norm(up))
            # the source is at the output rate: bring it down to this stage's rate
            stride = int(math.prod(upsample_rates[i + 1 :]))
            if stride > 1:
                self.noise_convs.append(
                    nn.Conv1d(1, out_ch, 2 * stride, stride=stride, padding=(stride + 1) // 2)
                )
            else:
                self.noise_convs.append(nn.Conv1d(1, out_ch, 1))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(out_ch, rk, tuple(rd), slope))
            ch = out_ch
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3))
        init_conv_weights(self.conv_post)

    def forward(self, z: torch.Tensor, f0: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """z ``[B, C, T]``, f0 ``[B, T]`` Hz, spk ``[B, S]`` -> audio ``[B, 1, T * hop]``."""
        x = self.conv_pre(self.adapter(z, spk))
        f0_up = torch.repeat_interleave(f0, self.hop, dim=1)  # [B, T * hop]
        har = self.source(f0_up)  # [B, 1, T * hop]
        for i, (up, nconv) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(F.leaky_relu(x, self.slope))
            x = x + nconv(har)
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))
        return torch.tanh(x)
