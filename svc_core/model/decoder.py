"""so-vits-svc 5.0's decoder: a BigVGAN-style NSF generator, with 5.0's parameter names.

The latent passes a speaker adapter (per-frame normalisation, speaker scale and bias), a
7-tap convolution and Mish, then upsampling stages; each stage adds the NSF harmonic
excitation (downsampled by a strided convolution) and averages anti-aliased AMP blocks
(dilated convolutions with SnakeBeta activations evaluated at twice the rate between
Kaiser-windowed sinc filters). Learned from ``vits_decoder/`` of PlayVoice/whisper-vits-svc.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import get_padding, init_conv_weights, weight_norm

# 5.0's fixed (untrained) merge of the 11 source harmonics into one excitation
_MERGE_W = (0.2942, -0.2243, 0.0033, -0.0056, -0.0020, -0.0046, 0.0221, -0.0083, -0.0241)
_MERGE_W = _MERGE_W + (-0.0036, -0.0581)
_MERGE_B = 0.0008


def replicate_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``F.pad(x, (left, right), mode="replicate")`` with the same values; concatenating
    the edge samples is about twice as fast as the replicate kernel on CPU."""
    return torch.cat(
        [x[..., :1].expand(-1, -1, left), x, x[..., -1:].expand(-1, -1, right)], dim=-1
    )


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """A Kaiser-windowed sinc low-pass ``[1, 1, kernel_size]`` with unit DC gain."""
    even = kernel_size % 2 == 0
    half = kernel_size // 2
    delta_f = 4 * half_width
    a = 2.285 * (half - 1) * math.pi * delta_f + 7.95
    if a > 50.0:
        beta = 0.1102 * (a - 8.7)
    elif a >= 21.0:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    t = torch.arange(-half, half) + 0.5 if even else torch.arange(kernel_size) - half
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (filt / filt.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """×``ratio`` band-limited upsampling (transposed depthwise convolution)."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.crop_l = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_r = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = replicate_pad(x, self.pad, self.pad)
        x = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c
        )
        return x[..., self.crop_l : -self.crop_r]


class LowPassFilter1d(nn.Module):
    """Depthwise Kaiser-sinc low-pass with replicate padding and a stride."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int):
        super().__init__()
        even = kernel_size % 2 == 0
        self.pads = (kernel_size // 2 - int(even), kernel_size // 2)
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = replicate_pad(x, *self.pads)
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """``x + sin²(αx) / β`` per channel, with ``α = exp(alpha)``, ``β = exp(beta)``.

    :meth:`freeze` (conversion) computes ``α`` and ``1 / (β + 1e-9)`` once and evaluates in
    place; the numbers are the same up to float rounding.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.frozen = False

    def freeze(self) -> None:
        """Precompute the constants (non-persistent buffers: state dicts are unchanged)."""
        with torch.no_grad():
            self.register_buffer("alpha_exp", torch.exp(self.alpha)[None, :, None], False)
            inv = 1.0 / (torch.exp(self.beta) + 1e-9)
            self.register_buffer("inv_beta", inv[None, :, None], False)
        self.frozen = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen and not torch.is_grad_enabled():
            return torch.addcmul(x, self.inv_beta, torch.mul(x, self.alpha_exp).sin_().square_())
        alpha = torch.exp(self.alpha)[None, :, None]
        beta = torch.exp(self.beta)[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha) ** 2


class SnakeAlias(nn.Module):
    """SnakeBeta evaluated at twice the rate: upsample, activate, low-pass and decimate."""

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d(ratio, kernel_size)
        self.downsample = DownSample1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


class AMPBlock(nn.Module):
    """Residual pairs of (SnakeAlias, dilated conv, SnakeAlias, conv) — BigVGAN's AMP block."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
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
                nn.Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size, 1))
            )
            for _ in dilations
        )
        self.convs1.apply(init_conv_weights)
        self.convs2.apply(init_conv_weights)
        self.activations = nn.ModuleList(SnakeAlias(channels) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = list(self.activations)
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts[::2], acts[1::2], strict=True):
            x = c2(a2(c1(a1(x)))).add_(x)  # in place on the fresh conv output
        return x


class SineGen(nn.Module):
    """Harmonic sines of an F0 curve plus noise (the NSF source), as 5.0's ``SineGen``.

    Args:
        sample_rate: rate of the F0 curve given to :meth:`forward` (already upsampled).
        harmonic_num: overtones above the fundamental.
        sine_amp: amplitude of voiced sines; unvoiced samples get noise of std ``sine_amp/3``.
        noise_std: noise added to voiced samples.
    """

    def __init__(
        self, sample_rate: int, harmonic_num: int = 10, sine_amp: float = 0.1, noise_std=0.003
    ):
        super().__init__()
        self.sample_rate, self.dim = sample_rate, harmonic_num + 1
        self.sine_amp, self.noise_std = sine_amp, noise_std

    @torch.no_grad()
    def forward(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 ``[B, L, 1]`` Hz per sample (0 = unvoiced) -> ``[B, L, harmonics]``."""
        harmonics = torch.arange(1, self.dim + 1, device=f0.device, dtype=f0.dtype)
        rad = (f0 * harmonics / self.sample_rate) % 1
        initial = torch.rand(f0.shape[0], self.dim, device=f0.device, dtype=f0.dtype)
        initial[:, 0] = 0  # random initial phase for the overtones only
        rad[:, 0, :] = rad[:, 0, :] + initial
        # subtract 1 wherever the running phase wraps, so the cumulative sum stays small
        wrapped = torch.cumsum(rad, 1) % 1
        shift = torch.zeros_like(rad)
        shift[:, 1:, :] = ((wrapped[:, 1:, :] - wrapped[:, :-1, :]) < 0) * -1.0
        sines = torch.sin(torch.cumsum(rad + shift, dim=1) * 2 * np.pi) * self.sine_amp
        uv = (f0 > 0).to(f0.dtype)
        noise_amp = uv * self.noise_std + (1 - uv) * self.sine_amp / 3
        return sines * uv + noise_amp * torch.randn_like(sines)


class SourceModuleHnNSF(nn.Module):
    """Sines of 11 harmonics merged by 5.0's fixed weights into one ``tanh`` excitation."""

    def __init__(self, sample_rate: int, harmonic_num: int = 10):
        super().__init__()
        self.l_sin_gen = SineGen(sample_rate, harmonic_num)
        w = torch.zeros(1, harmonic_num + 1)
        n = min(len(_MERGE_W), harmonic_num + 1)
        w[0, :n] = torch.tensor(_MERGE_W[:n])
        self.register_buffer("merge_w", w)
        self.register_buffer("merge_b", torch.tensor([_MERGE_B]))

    def forward(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 ``[B, L, 1]`` -> excitation ``[B, L, 1]``."""
        return torch.tanh(F.linear(self.l_sin_gen(f0), self.merge_w) + self.merge_b)


class SpeakerAdapter(nn.Module):
    """Normalise each frame over channels, then scale and shift by the speaker vector."""

    def __init__(self, spk_dim: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.W_scale = nn.Linear(spk_dim, channels)
        self.W_bias = nn.Linear(spk_dim, channels)
        nn.init.zeros_(self.W_scale.weight)
        nn.init.ones_(self.W_scale.bias)
        nn.init.zeros_(self.W_bias.weight)
        nn.init.zeros_(self.W_bias.bias)

    def forward(self, x: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, spk ``[B, S]`` (raw, not normalised) -> ``[B, C, T]``."""
        x = x.transpose(1, -1)
        mean = x.mean(dim=-1, keepdim=True)
        std = (((x - mean) ** 2).mean(dim=-1, keepdim=True) + self.eps).sqrt()
        y = (x - mean) / std * self.W_scale(spk).unsqueeze(1) + self.W_bias(spk).unsqueeze(1)
        return y.transpose(1, -1)


class Generator(nn.Module):
    """Latent ``[B, C, T]`` + speaker + NSF excitation -> waveform ``[B, 1, T * hop]``."""

    def __init__(
        self,
        sample_rate: int,
        spk_dim: int,
        upsample_input: int,
        upsample_initial_channel: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        harmonic_num: int = 10,
    ):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.hop = int(np.prod(upsample_rates))
        self.adapter = SpeakerAdapter(spk_dim, upsample_input)
        self.conv_pre = nn.Conv1d(upsample_input, upsample_initial_channel, 7, 1, padding=3)
        self.m_source = SourceModuleHnNSF(sample_rate, harmonic_num)
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            c_in, ch = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, ch, k, u, padding=(k - u) // 2)))
            if i + 1 < len(upsample_rates):
                s = int(np.prod(upsample_rates[i + 1 :]))
                self.noise_convs.append(nn.Conv1d(1, ch, 2 * s, stride=s, padding=s // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, ch, 1))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(AMPBlock(ch, rk, tuple(rd)))
        self.activation_post = SnakeAlias(ch)
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.ups.apply(init_conv_weights)

    def excitation(self, f0: torch.Tensor) -> torch.Tensor:
        """f0 ``[B, T]`` Hz per frame -> NSF excitation ``[B, 1, T * hop]`` (random phase)."""
        f0_up = torch.repeat_interleave(f0, self.hop, dim=1)
        return self.m_source(f0_up.unsqueeze(-1)).transpose(1, 2)

    def decode(self, x: torch.Tensor, spk: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, spk ``[B, S]``, source ``[B, 1, T * hop]`` -> ``[B, 1, T * hop]``."""
        x = self.conv_pre(self.adapter(x, spk))
        x = x * torch.tanh(F.softplus(x))  # Mish
        for i, (up, nc) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(x).add_(nc(source))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs.add_(block(x))
            x = xs.div_(self.num_kernels)
        return torch.tanh(self.conv_post(self.activation_post(x)))

    def forward(self, x: torch.Tensor, f0: torch.Tensor, spk: torch.Tensor) -> torch.Tensor:
        """Training: the latent gets ``N(0, 1)`` noise first, as in 5.0."""
        x = x + torch.randn_like(x)
        return self.decode(x, spk, self.excitation(f0))
