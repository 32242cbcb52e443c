"""so-vits-svc 5.0's generator (``SynthesizerTrn``): a conditional VAE with a SNAC flow and
an NSF decoder, with 5.0's parameter names so its files load with ``strict=True``.

Training path::

    content (PPG + vec) + coarse pitch ─► prior ("text") encoder ─► z_p ~ N(m_p, s_p)
    linear spectrogram + emb_g(normalised speaker) ─► posterior encoder ─► z_q ~ N(m_q, s_q)
    z_q ─► flow(speaker) ─► z_f, log|det|   (KL against the prior, with the log-determinant)
    z_p ─► flow⁻¹(speaker) ─► z_r, log|det| (KL against the posterior)
    random segment of z_q + N(0, 1) + F0 + speaker ─► NSF decoder ─► audio
    prior hidden ─► gradient reversal ─► speaker classifier

Conversion path (:meth:`SVCModel.infer`, 5.0's ``SynthesizerInfer.inference``): prior ─►
flow⁻¹(speaker) ─► decoder with an NSF excitation of the F0. The flow and the decoder see the
raw speaker vector; only the posterior's conditioning uses ``emb_g`` of the normalised one.

Learned from ``vits/models.py`` of PlayVoice/whisper-vits-svc. Our additions, off for 5.0's
files: a content input may be absent (``ppg_dim`` or ``vec_dim`` = 0, the module is then not
built); the content perturbation scales (5.0: 1 and 2) are config values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.errors import BadInputError
from svc_core.model.commons import (
    f0_to_coarse,
    rand_slice_starts,
    sequence_mask,
    slice_segments,
)
from svc_core.model.decoder import Generator
from svc_core.model.modules import WN, Encoder, ResidualCouplingBlock, SpeakerClassifier


class TextEncoder(nn.Module):
    """Content features + coarse pitch -> prior sample, mean, log-std ``[B, C, T]``, hidden."""

    def __init__(
        self,
        ppg_dim: int,
        vec_dim: int,
        out_channels: int,
        hidden: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window: int,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(ppg_dim, hidden, 5, padding=2) if ppg_dim > 0 else None
        self.hub = nn.Conv1d(vec_dim, hidden, 5, padding=2) if vec_dim > 0 else None
        self.pit = nn.Embedding(256, hidden)
        self.enc = Encoder(
            hidden, filter_channels, n_heads, n_layers, kernel_size, p_dropout, window
        )
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self,
        ppg: torch.Tensor | None,
        vec: torch.Tensor | None,
        coarse: torch.Tensor,
        mask: torch.Tensor,
        noise_scale: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """ppg ``[B, T, Dp]``, vec ``[B, T, Dv]``, coarse ``[B, T]`` int, mask ``[B, 1, T]``.

        Returns:
            ``(z, m, logs, hidden)``: ``[B, C, T]`` ×3 and ``[B, H, T]``.
        """
        x = self.pit(coarse).transpose(1, 2)
        if self.pre is not None:
            x = self.pre(ppg.transpose(1, -1)) * mask + x
        if self.hub is not None:
            x = self.hub(vec.transpose(1, -1)) * mask + x
        h = self.enc(x * mask, mask)
        stats = self.proj(h) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = m if noise_scale == 0 else m + torch.randn_like(m) * torch.exp(logs) * noise_scale
        return z * mask, m, logs, h


class PosteriorEncoder(nn.Module):
    """Linear spectrogram ``[B, F, T]`` -> posterior sample, mean and log-std ``[B, C, T]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        kernel_size: int,
        n_layers: int,
        gin_channels: int,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.enc = WN(hidden, kernel_size, 1, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, noise_scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.enc(self.pre(spec) * mask, mask, g=g)
        m, logs = torch.split(self.proj(h) * mask, self.out_channels, dim=1)
        z = m if noise_scale == 0 else m + torch.randn_like(m) * torch.exp(logs) * noise_scale
        return z * mask, m, logs


@dataclass
class TrainOutput:
    """What one training forward pass returns (batch B, C latent channels, T frames)."""

    audio: torch.Tensor  # [B, 1, segment_size] generated segment
    starts: torch.Tensor  # [B] first frame of each segment
    mask: torch.Tensor  # [B, 1, T]
    z_f: torch.Tensor  # flow(z_q), [B, C, T]
    z_r: torch.Tensor  # flow^-1(z_p), [B, C, T]
    z_p: torch.Tensor  # prior sample
    m_p: torch.Tensor
    logs_p: torch.Tensor
    z_q: torch.Tensor  # posterior sample
    m_q: torch.Tensor
    logs_q: torch.Tensor
    logdet_f: torch.Tensor  # [B]
    logdet_r: torch.Tensor  # [B]
    spk_pred: torch.Tensor  # [B, spk_dim] adversarial speaker prediction


class SVCModel(nn.Module):
    """so-vits-svc 5.0's generator (build it with :func:`svc_core.model.builders.build_generator`).

    Args:
        spec_channels: linear spectrogram bins (``n_fft // 2 + 1``).
        segment_frames: frames decoded per training item.
        sample_rate: audio rate of the decoder's output.
        (the rest: see :class:`svc_core.model.config.ModelConfig`)
    """

    def __init__(
        self,
        *,
        spec_channels: int,
        segment_frames: int,
        sample_rate: int,
        ppg_dim: int,
        vec_dim: int,
        spk_dim: int,
        gin_channels: int,
        ppg_noise: float,
        vec_noise: float,
        inter_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        attn_window: int,
        posterior_layers: int,
        posterior_kernel: int,
        n_flows: int,
        flow_layers: int,
        flow_kernel: int,
        upsample_input: int,
        upsample_initial_channel: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        harmonic_num: int,
        inference_only: bool = False,
    ):
        super().__init__()
        if upsample_input != inter_channels:
            raise BadInputError("model.upsample_input must equal model.inter_channels")
        self.segment_frames = segment_frames
        self.ppg_dim, self.vec_dim, self.spk_dim = ppg_dim, vec_dim, spk_dim
        self.ppg_noise, self.vec_noise = ppg_noise, vec_noise
        self.sample_rate = sample_rate
        self.inference_only = inference_only
        # 5.0's SynthesizerInfer keeps only enc_p, flow and dec (what its export holds)
        self.emb_g = None if inference_only else nn.Linear(spk_dim, gin_channels)
        self.enc_p = TextEncoder(
            ppg_dim,
            vec_dim,
            inter_channels,
            hidden_channels,
            filter_channels,
            n_heads,
            n_layers,
            kernel_size,
            p_dropout,
            attn_window,
        )
        self.speaker_classifier = (
            None if inference_only else SpeakerClassifier(hidden_channels, spk_dim)
        )
        self.enc_q = (
            None
            if inference_only
            else PosteriorEncoder(
                spec_channels,
                inter_channels,
                hidden_channels,
                posterior_kernel,
                posterior_layers,
                gin_channels,
            )
        )
        self.flow = ResidualCouplingBlock(
            inter_channels, hidden_channels, flow_kernel, 1, flow_layers, n_flows, spk_dim
        )
        self.dec = Generator(
            sample_rate,
            spk_dim,
            upsample_input,
            upsample_initial_channel,
            upsample_rates,
            upsample_kernel_sizes,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
            harmonic_num,
        )
        self.hop_length = self.dec.hop

    # -- helpers ---------------------------------------------------------------------------

    def _check_inputs(
        self,
        ppg: torch.Tensor | None,
        vec: torch.Tensor | None,
        f0: torch.Tensor,
        spk: torch.Tensor,
    ) -> None:
        b, t = f0.shape
        for name, x, dim in (("ppg", ppg, self.ppg_dim), ("vec", vec, self.vec_dim)):
            if dim > 0:
                if x is None:
                    raise BadInputError(f"this model needs '{name}' content features")
                if x.dim() != 3 or x.shape[0] != b or x.shape[1] != t or x.shape[2] != dim:
                    raise BadInputError(
                        f"'{name}' must be [B={b}, T={t}, {dim}], got {list(x.shape)}"
                    )
        if spk.shape != (b, self.spk_dim):
            raise BadInputError(f"'spk' must be [B={b}, {self.spk_dim}], got {list(spk.shape)}")

    # -- training --------------------------------------------------------------------------

    def forward(
        self,
        ppg: torch.Tensor | None,
        vec: torch.Tensor | None,
        f0: torch.Tensor,
        spec: torch.Tensor,
        spk: torch.Tensor,
        lengths: torch.Tensor,
    ) -> TrainOutput:
        """One training pass (5.0's ``SynthesizerTrn.forward``).

        Args:
            ppg: ``[B, T, Dp]`` or None when ``ppg_dim == 0``.
            vec: ``[B, T, Dv]`` or None when ``vec_dim == 0``.
            f0: ``[B, T]`` Hz, 0 = unvoiced.
            spec: ``[B, F, T]`` linear magnitude spectrogram of the target audio.
            spk: ``[B, spk_dim]`` speaker vector.
            lengths: ``[B]`` valid frames per item (each >= ``segment_frames``).
        """
        if self.inference_only:
            raise RuntimeError("an inference-only generator cannot train")
        self._check_inputs(ppg, vec, f0, spk)
        if ppg is not None and self.ppg_noise > 0:
            ppg = ppg + torch.randn_like(ppg) * self.ppg_noise
        if vec is not None and self.vec_noise > 0:
            vec = vec + torch.randn_like(vec) * self.vec_noise
        g = self.emb_g(F.normalize(spk)).unsqueeze(-1)
        mask = sequence_mask(lengths, f0.shape[1]).unsqueeze(1).to(spec.dtype)
        z_p, m_p, logs_p, hidden = self.enc_p(ppg, vec, f0_to_coarse(f0), mask)
        z_q, m_q, logs_q = self.enc_q(spec, mask, g)

        starts = rand_slice_starts(lengths, self.segment_frames)
        z_slice = slice_segments(z_q, starts, self.segment_frames)
        f0_slice = slice_segments(f0, starts, self.segment_frames)
        audio = self.dec(z_slice, f0_slice, spk)

        z_f, logdet_f = self.flow(z_q, mask, spk)
        z_r, logdet_r = self.flow(z_p, mask, spk, reverse=True)
        spk_pred = self.speaker_classifier(hidden)
        return TrainOutput(
            audio, starts, mask, z_f, z_r, z_p, m_p, logs_p, z_q, m_q, logs_q,
            logdet_f, logdet_r, spk_pred,
        )  # fmt: skip

    # -- conversion ------------------------------------------------------------------------

    @torch.no_grad()
    def infer(
        self,
        ppg: torch.Tensor | None,
        vec: torch.Tensor | None,
        f0: torch.Tensor,
        spk: torch.Tensor,
        lengths: torch.Tensor | None = None,
        noise_scale: float = 1.0,
        excitation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Content + F0 + target speaker -> audio (5.0's ``SynthesizerInfer.inference``).

        Args:
            ppg: ``[B, T, Dp]`` (or None if unused), vec: ``[B, T, Dv]`` (or None).
            f0: ``[B, T]`` Hz at the model's frame rate, 0 = unvoiced.
            spk: ``[B, spk_dim]`` target speaker vector (as stored, not normalised).
            lengths: ``[B]`` valid frames (default: all ``T``).
            noise_scale: scale of the prior sample's noise (0 = the prior mean; 5.0 uses 1).
            excitation: ``[B, T * hop]`` NSF source replacing the one made from ``f0``
                (5.0's ``pitch2source``), e.g. to reproduce a run exactly.

        Returns:
            ``[B, T * hop_length]`` float audio in ``[-1, 1]``; samples past
            ``lengths * hop_length`` are silent.
        """
        self._check_inputs(ppg, vec, f0, spk)
        b, t = f0.shape
        if t < 1:
            raise BadInputError("cannot convert zero frames")
        if excitation is not None and tuple(excitation.shape) != (b, t * self.hop_length):
            raise BadInputError(
                f"the excitation must be [B={b}, {t * self.hop_length}] samples, "
                f"got {list(excitation.shape)}"
            )
        full = lengths is None
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=f0.device)
        dtype = next(self.parameters()).dtype
        mask = sequence_mask(lengths, t).unsqueeze(1).to(dtype)
        z_p, _, _, _ = self.enc_p(ppg, vec, f0_to_coarse(f0), mask, noise_scale=noise_scale)
        z, _ = self.flow(z_p, mask, spk, reverse=True)
        source = self.dec.excitation(f0) if excitation is None else excitation.unsqueeze(1)
        audio = self.dec.decode(z * mask, spk, source.to(dtype))[:, 0]
        if full:
            return audio
        return audio * torch.repeat_interleave(mask[:, 0], self.hop_length, dim=1)
