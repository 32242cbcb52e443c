"""The so-VITS-svc 5.0 generator: a conditional VAE with a normalising flow and an NSF decoder.

Training path::

    content (PPG/vec) + coarse pitch ─► prior encoder ─► N(m_p, s_p)
    linear spectrogram + speaker ─────► posterior encoder ─► z_q ~ N(m_q, s_q)
    z_q ─► flow(speaker) ─► z_f  (KL against the prior)
    prior sample ─► flow⁻¹(speaker) ─► z_r  (KL against the posterior)
    random segment of z_q + F0 + speaker ─► NSF decoder ─► audio

Conversion path (:meth:`SVCModel.infer`): prior sample ─► flow⁻¹ ─► decoder; the target
speaker enters through the flow and the decoder, the source's words and melody through the
content features and F0.

Checked against PlayVoice/whisper-vits-svc (``vits/models.py``, ``vits_extend/train.py``):
same prior encoder (PPG conv + vec conv + coarse-pitch embedding into a 6-layer
relative-attention transformer), 16-layer WaveNet posterior, 4 mean-only couplings, speaker
classifier behind gradient reversal, content perturbation (ppg +N(0,1), vec +N(0,2)), loss
mix and optimiser. Deliberate differences: the flow is conditioned on ``emb_g(normalised
spk)`` rather than the raw embedding (same width, 256); the decoder is NSF-HiFi-GAN
(ResBlock1 + leaky ReLU) where 5.0 uses BigVGAN AMP blocks with Snake activations; the
discriminator is MPD + multi-resolution (5.0 adds a scale discriminator).
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
from svc_core.model.decoder import NSFGenerator
from svc_core.model.modules import Flow, SpeakerClassifier, TransformerEncoder, WaveNet


class PriorEncoder(nn.Module):
    """Content features + pitch embedding -> prior mean/log-std ``[B, C, T]``."""

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
        self.ppg_in = nn.Conv1d(ppg_dim, hidden, 5, padding=2) if ppg_dim > 0 else None
        self.vec_in = nn.Conv1d(vec_dim, hidden, 5, padding=2) if vec_dim > 0 else None
        self.pitch = nn.Embedding(256, hidden)
        self.enc = TransformerEncoder(
            hidden, filter_channels, n_heads, n_layers, kernel_size, p_dropout, window
        )
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self,
        ppg: torch.Tensor | None,
        vec: torch.Tensor | None,
        f0: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ppg ``[B, T, Dp]``, vec ``[B, T, Dv]``, f0 ``[B, T]``, mask ``[B, 1, T]``.

        Returns:
            ``(m_p, logs_p, hidden)`` with shapes ``[B, C, T]``, ``[B, C, T]``, ``[B, H, T]``.
        """
        x = self.pitch(f0_to_coarse(f0)).transpose(1, 2)
        if self.ppg_in is not None:
            x = x + self.ppg_in(ppg.transpose(1, 2)) * mask
        if self.vec_in is not None:
            x = x + self.vec_in(vec.transpose(1, 2)) * mask
        h = self.enc(x * mask, mask)
        stats = self.proj(h) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, h


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
        self.enc = WaveNet(hidden, kernel_size, 1, n_layers, gin_channels=gin_channels)
        self.proj = nn.Conv1d(hidden, 2 * out_channels, 1)

    def forward(
        self, spec: torch.Tensor, mask: torch.Tensor, g: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.enc(self.pre(spec) * mask, mask, g=g)
        m, logs = torch.split(self.proj(h) * mask, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * mask
        return z, m, logs


@dataclass
class TrainOutput:
    """What one training forward pass returns (shapes for batch B, C latent channels)."""

    audio: torch.Tensor  # [B, 1, segment_size] generated segment
    starts: torch.Tensor  # [B] first frame of each segment
    mask: torch.Tensor  # [B, 1, T]
    z_f: torch.Tensor  # flow(z_q), [B, C, T]
    z_r: torch.Tensor  # flow^-1(prior sample), [B, C, T]
    m_p: torch.Tensor
    logs_p: torch.Tensor
    m_q: torch.Tensor
    logs_q: torch.Tensor
    spk_pred: torch.Tensor | None  # [B, spk_dim] adversarial speaker prediction


class SVCModel(nn.Module):
    """so-VITS-svc 5.0 generator (build it with :func:`svc_core.model.builders.build_generator`).

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
        speaker_classifier: bool,
        upsample_input: int,
        upsample_initial_channel: int,
        upsample_rates: tuple[int, ...],
        upsample_kernel_sizes: tuple[int, ...],
        resblock_kernel_sizes: tuple[int, ...],
        resblock_dilation_sizes: tuple[tuple[int, ...], ...],
        harmonic_num: int,
        lrelu_slope: float,
    ):
        super().__init__()
        if upsample_input != inter_channels:
            raise BadInputError("model.upsample_input must equal model.inter_channels")
        self.segment_frames = segment_frames
        self.ppg_dim, self.vec_dim, self.spk_dim = ppg_dim, vec_dim, spk_dim
        self.ppg_noise, self.vec_noise = ppg_noise, vec_noise
        self.hop_length = 1
        for r in upsample_rates:
            self.hop_length *= r
        self.sample_rate = sample_rate
        self.emb_g = nn.Linear(spk_dim, gin_channels)
        self.enc_p = PriorEncoder(
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
        self.enc_q = PosteriorEncoder(
            spec_channels,
            inter_channels,
            hidden_channels,
            posterior_kernel,
            posterior_layers,
            gin_channels,
        )
        self.flow = Flow(
            inter_channels, hidden_channels, flow_kernel, flow_layers, n_flows, gin_channels
        )
        self.speaker_classifier = (
            SpeakerClassifier(hidden_channels, spk_dim) if speaker_classifier else None
        )
        self.dec = NSFGenerator(
            sample_rate,
            spk_dim,
            upsample_input,
            upsample_initial_channel,
            upsample_rates,
            upsample_kernel_sizes,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
            harmonic_num,
            lrelu_slope,
        )

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

    def _speaker(self, spk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spk = F.normalize(spk.float(), dim=-1)
        return spk, self.emb_g(spk).unsqueeze(-1)

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
        """One training pass.

        Args:
            ppg: ``[B, T, Dp]`` or None when ``ppg_dim == 0``.
            vec: ``[B, T, Dv]`` or None when ``vec_dim == 0``.
            f0: ``[B, T]`` Hz, 0 = unvoiced.
            spec: ``[B, F, T]`` linear magnitude spectrogram of the target audio.
            spk: ``[B, spk_dim]`` speaker embedding.
            lengths: ``[B]`` valid frames per item (each >= ``segment_frames``).
        """
        self._check_inputs(ppg, vec, f0, spk)
        if ppg is not None and self.ppg_noise > 0:
            ppg = ppg + torch.randn_like(ppg) * self.ppg_noise
        if vec is not None and self.vec_noise > 0:
            vec = vec + torch.randn_like(vec) * self.vec_noise
        spk_n, g = self._speaker(spk)
        mask = sequence_mask(lengths, f0.shape[1]).unsqueeze(1).to(spec.dtype)
        m_p, logs_p, hidden = self.enc_p(ppg, vec, f0, mask)
        z_q, m_q, logs_q = self.enc_q(spec, mask, g)

        starts = rand_slice_starts(lengths, self.segment_frames)
        z_slice = slice_segments(z_q, starts, self.segment_frames)
        f0_slice = slice_segments(f0, starts, self.segment_frames)
        audio = self.dec(z_slice, f0_slice, spk_n)

        z_f = self.flow(z_q, mask, g)
        z_p = (m_p + torch.randn_like(m_p) * torch.exp(logs_p)) * mask
        z_r = self.flow(z_p, mask, g, reverse=True)
        spk_pred = self.speaker_classifier(hidden, mask) if self.speaker_classifier else None
        return TrainOutput(audio, starts, mask, z_f, z_r, m_p, logs_p, m_q, logs_q, spk_pred)

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
    ) -> torch.Tensor:
        """Content + F0 + target speaker -> audio.

        Args:
            ppg: ``[B, T, Dp]`` (or None if unused), vec: ``[B, T, Dv]`` (or None).
            f0: ``[B, T]`` Hz at the model's frame rate, 0 = unvoiced.
            spk: ``[B, spk_dim]`` target speaker embedding.
            lengths: ``[B]`` valid frames (default: all ``T``).
            noise_scale: scale of the prior sample's noise (0 = the prior mean).

        Returns:
            ``[B, T * hop_length]`` float audio in ``[-1, 1]``; samples past
            ``lengths * hop_length`` are silent.
        """
        self._check_inputs(ppg, vec, f0, spk)
        b, t = f0.shape
        if t < 1:
            raise BadInputError("cannot convert zero frames")
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=f0.device)
        spk_n, g = self._speaker(spk)
        dtype = next(self.parameters()).dtype
        mask = sequence_mask(lengths, t).unsqueeze(1).to(dtype)
        m_p, logs_p, _ = self.enc_p(ppg, vec, f0, mask)
        z_p = (m_p + torch.randn_like(m_p) * torch.exp(logs_p) * noise_scale) * mask
        z = self.flow(z_p, mask, g, reverse=True)
        audio = self.dec(z * mask, f0 * mask[:, 0], spk_n)[:, 0]
        sample_mask = torch.repeat_interleave(mask[:, 0], self.hop_length, dim=1)
        return audio * sample_mask
