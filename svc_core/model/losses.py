"""Losses of so-vits-svc 5.0 training (``vits/losses.py``, ``vits_extend/``): KL through the
SNAC flow with its log-determinant, least-squares GAN, feature matching, multi-resolution STFT."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.discriminators import DiscOutput


def kl_loss(
    z_p: torch.Tensor,
    logs_q: torch.Tensor,
    m_p: torch.Tensor,
    logs_p: torch.Tensor,
    logdet: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """5.0's KL through the flow: ``sum(KL at z_p) - sum(log|det|)``, per valid frame-channel.

    Args:
        z_p: ``[B, C, T]`` a sample mapped through the flow.
        logs_q: ``[B, C, T]`` the log-std of the distribution the sample came from.
        m_p, logs_p: ``[B, C, T]`` the target distribution's mean and log-std.
        logdet: ``[B]`` the flow's log-determinant for that mapping.
        mask: ``[B, 1, T]``.
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return (torch.sum(kl * mask) - torch.sum(logdet.float())) / torch.sum(mask)


def discriminator_loss(real: DiscOutput, fake: DiscOutput) -> torch.Tensor:
    """LSGAN: real scores -> 1, fake scores -> 0, averaged over sub-discriminators."""
    loss = sum(
        torch.mean((1.0 - r.float()) ** 2) + torch.mean(f.float() ** 2)
        for (_, r), (_, f) in zip(real, fake, strict=True)
    )
    return loss / len(real)


def generator_adv_loss(fake: DiscOutput) -> torch.Tensor:
    """LSGAN: fake scores -> 1."""
    return sum(torch.mean((1.0 - f.float()) ** 2) for _, f in fake) / len(fake)


def feature_matching_loss(real: DiscOutput, fake: DiscOutput) -> torch.Tensor:
    """L1 between the discriminators' feature maps of real and generated audio."""
    loss = 0.0
    for (fr, _), (ff, _) in zip(real, fake, strict=True):
        for a, b in zip(fr, ff, strict=True):
            loss = loss + torch.mean(torch.abs(a.float().detach() - b.float()))
    return loss / len(real)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over resolutions.

    Args:
        resolutions: ``(n_fft, hop, win)`` triples.
    """

    def __init__(self, resolutions: tuple[tuple[int, int, int], ...]):
        super().__init__()
        self.resolutions = [tuple(r) for r in resolutions]
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(win), persistent=False)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """fake, real ``[B, T]`` -> (spectral convergence, log-magnitude loss)."""
        sc = mag = 0.0
        for i, (n_fft, hop, win) in enumerate(self.resolutions):
            w = getattr(self, f"window{i}")
            xf = torch.stft(fake.float(), n_fft, hop, win, w, return_complex=True)
            xr = torch.stft(real.float(), n_fft, hop, win, w, return_complex=True)
            mf = torch.sqrt(torch.clamp(xf.real**2 + xf.imag**2, min=1e-7))
            mr = torch.sqrt(torch.clamp(xr.real**2 + xr.imag**2, min=1e-7))
            sc = sc + torch.linalg.norm(mr - mf) / torch.linalg.norm(mr).clamp(min=1e-7)
            mag = mag + F.l1_loss(torch.log(mf), torch.log(mr))
        n = len(self.resolutions)
        return sc / n, mag / n
