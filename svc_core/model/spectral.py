"""Spectrogram front-ends used by the posterior encoder and the losses.

Framing: the signal is reflect-padded by ``(n_fft - hop) / 2`` on both sides and framed
without centring, so a signal of ``N * hop`` samples gives exactly ``N`` frames — frame ``i``
is centred on samples ``[i * hop, (i + 1) * hop)``, aligned with the decoder's output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _frames(x: torch.Tensor, n_fft: int, hop: int, win: int, window: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` -> complex ``[B, n_fft // 2 + 1, T // hop]``."""
    pad = (n_fft - hop) // 2
    mode = "reflect" if x.shape[-1] > pad else "constant"
    x = F.pad(x.float().unsqueeze(1), (pad, pad), mode=mode).squeeze(1)
    return torch.stft(x, n_fft, hop, win, window, center=False, return_complex=True)


class LinearSpectrogram(nn.Module):
    """Magnitude spectrogram ``[B, n_fft // 2 + 1, frames]`` of audio ``[B, T]``."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int):
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop_length, win_length
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spec = _frames(audio, self.n_fft, self.hop, self.win, self.window)
        return torch.sqrt(spec.real**2 + spec.imag**2 + 1e-6)


class MelSpectrogram(nn.Module):
    """Log-mel spectrogram ``[B, n_mels, frames]`` (Slaney mel scale, as librosa)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        win_length: int,
        n_mels: int,
        f_min: float,
        f_max: float,
    ):
        super().__init__()
        import torchaudio

        self.linear = LinearSpectrogram(n_fft, hop_length, win_length)
        fb = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1,
            f_min,
            min(f_max, sample_rate / 2),
            n_mels,
            sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )  # [F, n_mels]
        self.register_buffer("fb", fb.t().contiguous(), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mag = self.linear(audio)
        return torch.log(torch.clamp(self.fb @ mag, min=1e-5))
