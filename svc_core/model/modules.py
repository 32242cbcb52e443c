"""Building blocks of so-vits-svc 5.0's generator, with 5.0's parameter names.

Relative-position transformer (the prior's "text" encoder), WaveNet stack, the SNAC
(speaker-normalised affine coupling) flow and the gradient-reversal speaker classifier.
Attribute names equal the keys of 5.0's state dicts (``vits/attentions.py``,
``vits/modules.py``, ``vits/models.py``, ``vits/modules_grl.py`` of PlayVoice/whisper-vits-svc),
so its files load with ``strict=True``; weight norm is torch's parametrisation (legacy
``weight_g``/``weight_v`` keys are mapped at the edge, :mod:`svc_core.model.sovits5`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import weight_norm


class LayerNorm(nn.Module):
    """LayerNorm over the channels of ``[B, C, T]`` (parameters ``gamma``, ``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return y.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position embeddings shared by the heads.

    Keys and values get a learned embedding for each offset ``-w..w`` (``emb_rel_k``,
    ``emb_rel_v``: ``[1, 2w+1, C/heads]``); offsets outside the window get none.
    """

    def __init__(self, channels: int, n_heads: int, window: int, p_dropout: float = 0.0):
        super().__init__()
        if channels % n_heads:
            raise ValueError("channels must be divisible by n_heads")
        self.n_heads, self.k_channels, self.window = n_heads, channels // n_heads, window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(p_dropout)
        std = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def _relative(self, emb: torch.Tensor, length: int) -> torch.Tensor:
        """``[1, 2w+1, d]`` -> ``[1, 2L-1, d]`` for offsets ``-(L-1)..L-1`` (zeros outside)."""
        w = self.window
        pad = max(length - (w + 1), 0)
        start = max((w + 1) - length, 0)
        if pad:
            emb = F.pad(emb, (0, 0, pad, pad))
        return emb[:, start : start + 2 * length - 1]

    @staticmethod
    def _rel_to_abs(x: torch.Tensor) -> torch.Tensor:
        """``[B, H, L, 2L-1]`` -> ``[B, H, L, L]``."""
        b, h, n, _ = x.shape
        x = F.pad(x, (0, 1)).reshape(b, h, 2 * n * n)
        x = F.pad(x, (0, n - 1)).reshape(b, h, n + 1, 2 * n - 1)
        return x[:, :, :n, n - 1 :]

    @staticmethod
    def _abs_to_rel(x: torch.Tensor) -> torch.Tensor:
        """``[B, H, L, L]`` -> ``[B, H, L, 2L-1]``."""
        b, h, n, _ = x.shape
        x = F.pad(x, (0, n - 1)).reshape(b, h, n * n + n * (n - 1))
        x = F.pad(x, (n, 0)).reshape(b, h, n, 2 * n)
        return x[:, :, :, 1:]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, attn_mask ``[B, 1, T, T]`` -> ``[B, C, T]``."""
        b, c, t = x.shape
        heads, d = self.n_heads, self.k_channels
        q = self.conv_q(x).view(b, heads, d, t).transpose(2, 3) / math.sqrt(d)
        k = self.conv_k(x).view(b, heads, d, t).transpose(2, 3)
        v = self.conv_v(x).view(b, heads, d, t).transpose(2, 3)
        scores = torch.matmul(q, k.transpose(-2, -1))
        rel_k = self._relative(self.emb_rel_k, t)  # [1, 2T-1, d]
        scores = scores + self._rel_to_abs(torch.matmul(q, rel_k.unsqueeze(0).transpose(-2, -1)))
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = self.drop(F.softmax(scores, dim=-1))  # [B, H, T, T]
        out = torch.matmul(p, v)
        rel_v = self._relative(self.emb_rel_v, t)
        out = out + torch.matmul(self._abs_to_rel(p), rel_v.unsqueeze(0))
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FFN(nn.Module):
    """Two "same"-padded convolutions with ReLU between them."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(F.pad(x * mask, self.pad))
        x = self.drop(torch.relu(x))
        return self.conv_2(F.pad(x * mask, self.pad)) * mask


class Encoder(nn.Module):
    """Post-norm transformer of relative attention + FFN layers on ``[B, H, T]``."""

    def __init__(
        self,
        hidden: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window: int = 4,
    ):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden, n_heads, window, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, n1, ffn, n2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = n1(x + self.drop(attn(x, attn_mask)))
            x = n2(x + self.drop(ffn(x, mask)))
        return x * mask


class WN(nn.Module):
    """Non-causal WaveNet of gated dilated convolutions with optional global conditioning.

    Args:
        hidden: channels.
        kernel_size: odd kernel size.
        dilation_rate: dilation grows as ``dilation_rate ** i``.
        n_layers: layers.
        gin_channels: conditioning channels (0: unconditioned).
    """

    def __init__(
        self,
        hidden: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
    ):
        super().__init__()
        self.hidden, self.n_layers = hidden, n_layers
        self.drop = nn.Dropout(p_dropout)
        if gin_channels:
            self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1))
        else:
            self.cond_layer = None
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            d = dilation_rate**i
            pad = (kernel_size * d - d) // 2
            self.in_layers.append(
                weight_norm(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=d, padding=pad))
            )
            out = 2 * hidden if i < n_layers - 1 else hidden  # the last feeds only the skip
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden, out, 1)))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x ``[B, H, T]``, mask ``[B, 1, T]``, g ``[B, G, 1]`` -> ``[B, H, T]``."""
        out = torch.zeros_like(x)
        cond = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        h = self.hidden
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            a = inl(x)
            if cond is not None:
                a = a + cond[:, i * 2 * h : (i + 1) * 2 * h]
            acts = self.drop(torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:]))
            rs_out = rs(acts)
            if i < self.n_layers - 1:
                x = (x + rs_out[:, :h]) * mask
                out = out + rs_out[:, h:]
            else:
                out = out + rs_out
        return out * mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling normalised by the speaker (5.0's SNAC).

    Both halves are normalised by a speaker-dependent mean and log-scale (``snac`` of the raw
    speaker vector); the coupling then shifts the second half by a WaveNet of the first.
    The speaker scale enters the log-determinant.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int,
    ):
        super().__init__()
        if channels % 2:
            raise ValueError("flow channels must be even")
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WN(hidden, kernel_size, dilation_rate, n_layers)
        self.post = nn.Conv1d(hidden, self.half, 1)
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)
        self.snac = nn.Conv1d(gin_channels, 2 * self.half, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, spk: torch.Tensor, reverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, C, T]``, mask ``[B, 1, T]``, spk ``[B, S]`` -> ``(x', logdet [B])``."""
        spk_m, spk_v = self.snac(spk.unsqueeze(-1)).chunk(2, dim=1)  # [B, C/2, 1] each
        x0, x1 = torch.split(x, [self.half, self.half], 1)
        x0_norm = (x0 - spk_m) * torch.exp(-spk_v) * mask
        h = self.enc(self.pre(x0_norm) * mask, mask)
        m = self.post(h) * mask
        v_sum = torch.sum(spk_v.expand(-1, -1, x.size(-1)) * mask, [1, 2])
        if not reverse:
            x1 = (m + (x1 - spk_m) * torch.exp(-spk_v) * mask) * mask
            return torch.cat([x0, x1], 1), -v_sum
        x1 = (x1 - m) * mask
        x1 = (spk_m + x1 * torch.exp(spk_v)) * mask
        return torch.cat([x0, x1], 1), v_sum


class Flip(nn.Module):
    """Reverse the channel order (parameter-free; its place keeps 5.0's module indices)."""

    def forward(self, x: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.flip(x, [1]), torch.zeros(x.size(0), dtype=x.dtype, device=x.device)


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` SNAC couplings, each followed by a channel flip (``flows.0, 2, 4, ...``)."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int,
        gin_channels: int,
    ):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels, hidden, kernel_size, dilation_rate, n_layers, gin_channels
                )
            )
            self.flows.append(Flip())

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, spk: torch.Tensor, reverse: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the mapped latent ``[B, C, T]`` and the summed log-determinant ``[B]``."""
        total = torch.zeros(x.size(0), dtype=x.dtype, device=x.device)
        for flow in reversed(self.flows) if reverse else self.flows:
            x, logdet = flow(x, mask, spk, reverse=reverse)
            total = total + logdet
        return x, total


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return -ctx.scale * grad, None


class GradientReversal(nn.Module):
    """Identity forwards, gradient times ``-scale`` backwards (Ganin & Lempitsky, 2015)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GradReverse.apply(x, self.scale)


class SpeakerClassifier(nn.Module):
    """Predicts the speaker vector from the prior's hidden states behind gradient reversal.

    Training it pushes the prior encoder to drop the source singer's timbre from the content.
    ``classifier`` is ``[GRL, conv, ReLU, conv, ReLU, conv]`` (5.0's indices 1, 3, 5).
    """

    def __init__(self, hidden: int, spk_dim: int):
        super().__init__()
        self.classifier = nn.Sequential(
            GradientReversal(1.0),
            weight_norm(nn.Conv1d(hidden, hidden, 5, padding=2)),
            nn.ReLU(),
            weight_norm(nn.Conv1d(hidden, hidden, 5, padding=2)),
            nn.ReLU(),
            weight_norm(nn.Conv1d(hidden, spk_dim, 5, padding=2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, H, T]`` -> ``[B, spk_dim]`` (mean over all frames, as 5.0)."""
        return torch.mean(self.classifier(x), dim=-1)
