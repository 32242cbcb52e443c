"""Building blocks of the VITS generator: WaveNet stack, relative-position transformer,
residual coupling flow, and the gradient-reversal speaker classifier."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from svc_core.model.commons import weight_norm


class LayerNorm1d(nn.Module):
    """LayerNorm over channels of a ``[B, C, T]`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class WaveNet(nn.Module):
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
        self.hidden = hidden
        self.n_layers = n_layers
        self.drop = nn.Dropout(p_dropout)
        self.cond = (
            weight_norm(nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1)) if gin_channels else None
        )
        self.in_layers = nn.ModuleList()
        self.res_skip = nn.ModuleList()
        for i in range(n_layers):
            d = dilation_rate**i
            pad = (kernel_size * d - d) // 2
            self.in_layers.append(
                weight_norm(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=d, padding=pad))
            )
            # the last layer feeds only the skip path
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip.append(weight_norm(nn.Conv1d(hidden, out, 1)))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x ``[B, H, T]``, mask ``[B, 1, T]``, g ``[B, G, 1]`` -> ``[B, H, T]``."""
        out = torch.zeros_like(x)
        cond = self.cond(g) if (g is not None and self.cond is not None) else None
        h = self.hidden
        for i, (inl, rs) in enumerate(zip(self.in_layers, self.res_skip, strict=True)):
            a = inl(x)
            if cond is not None:
                a = a + cond[:, i * 2 * h : (i + 1) * 2 * h]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            acts = self.drop(acts)
            rs_out = rs(acts)
            if i < self.n_layers - 1:
                x = (x + rs_out[:, :h]) * mask
                out = out + rs_out[:, h:]
            else:
                out = out + rs_out
        return out * mask


class RelativeAttention(nn.Module):
    """Multi-head self-attention with windowed relative position embeddings (as in VITS).

    Keys and values get a learned embedding for each offset ``-w..w``; offsets outside the
    window get none, so attention can reach the whole sequence but position is local.
    """

    def __init__(self, channels: int, n_heads: int, window: int, p_dropout: float = 0.0):
        super().__init__()
        self.n_heads = n_heads
        self.k_ch = channels // n_heads
        self.window = window
        self.q = nn.Conv1d(channels, channels, 1)
        self.k = nn.Conv1d(channels, channels, 1)
        self.v = nn.Conv1d(channels, channels, 1)
        self.o = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(p_dropout)
        std = self.k_ch**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(2 * window + 1, self.k_ch) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(2 * window + 1, self.k_ch) * std)
        for conv in (self.q, self.k, self.v):
            nn.init.xavier_uniform_(conv.weight)

    def _rel_embeddings(self, emb: torch.Tensor, length: int) -> torch.Tensor:
        """``[2w+1, d]`` -> ``[2L-1, d]`` for offsets ``-(L-1)..L-1`` (zeros outside window)."""
        w = self.window
        pad = max(length - 1 - w, 0)
        start = max(w - (length - 1), 0)
        return F.pad(emb, (0, 0, pad, pad))[start : start + 2 * length - 1]

    @staticmethod
    def _rel_to_abs(x: torch.Tensor) -> torch.Tensor:
        """``[B, H, L, 2L-1]`` relative logits -> ``[B, H, L, L]`` absolute ones."""
        b, h, n, _ = x.shape
        x = F.pad(x, (0, 1)).reshape(b, h, n * 2 * n)
        x = F.pad(x, (0, n - 1)).reshape(b, h, n + 1, 2 * n - 1)
        return x[:, :, :n, n - 1 :]

    @staticmethod
    def _abs_to_rel(x: torch.Tensor) -> torch.Tensor:
        """``[B, H, L, L]`` -> ``[B, H, L, 2L-1]``: the inverse layout of :meth:`_rel_to_abs`."""
        b, h, n, _ = x.shape
        x = F.pad(x, (0, n - 1)).reshape(b, h, n * (2 * n - 1))
        x = F.pad(x, (n, 0)).reshape(b, h, n, 2 * n)
        return x[:, :, :, 1:]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, attn_mask ``[B, 1, T, T]`` -> ``[B, C, T]``."""
        b, c, t = x.shape
        q = self.q(x).view(b, self.n_heads, self.k_ch, t).transpose(2, 3)  # [B, H, T, d]
        k = self.k(x).view(b, self.n_heads, self.k_ch, t).transpose(2, 3)
        v = self.v(x).view(b, self.n_heads, self.k_ch, t).transpose(2, 3)
        q = q / math.sqrt(self.k_ch)
        scores = q @ k.transpose(-2, -1)  # [B, H, T, T]
        rel_k = self._rel_embeddings(self.emb_rel_k, t)  # [2T-1, d]
        scores = scores + self._rel_to_abs(q @ rel_k.t())
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = self.drop(torch.softmax(scores, dim=-1))
        out = p @ v + self._abs_to_rel(p) @ self._rel_embeddings(self.emb_rel_v, t)
        return self.o(out.transpose(2, 3).reshape(b, c, t))


class FFN(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.c1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.c2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.c1(x * mask)))
        return self.c2(x * mask) * mask


class TransformerEncoder(nn.Module):
    """Post-norm transformer with relative attention and convolutional feed-forward."""

    def __init__(
        self,
        channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        window: int,
    ):
        super().__init__()
        self.attn = nn.ModuleList(
            RelativeAttention(channels, n_heads, window, p_dropout) for _ in range(n_layers)
        )
        self.norm1 = nn.ModuleList(LayerNorm1d(channels) for _ in range(n_layers))
        self.ffn = nn.ModuleList(
            FFN(channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm2 = nn.ModuleList(LayerNorm1d(channels) for _ in range(n_layers))
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, T]``, mask ``[B, 1, T]``."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        x = x * mask
        for attn, n1, ffn, n2 in zip(self.attn, self.norm1, self.ffn, self.norm2, strict=True):
            x = n1(x + self.drop(attn(x, attn_mask)))
            x = n2(x + self.drop(ffn(x, mask)))
        return x * mask


class ResidualCoupling(nn.Module):
    """Mean-only affine coupling: the second half of the channels is shifted by a WaveNet
    of the first half. Volume-preserving, so its log-determinant is zero."""

    def __init__(
        self, channels: int, hidden: int, kernel_size: int, n_layers: int, gin_channels: int
    ):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WaveNet(hidden, kernel_size, 1, n_layers, gin_channels=gin_channels)
        self.post = nn.Conv1d(hidden, channels - self.half, 1)
        # start as the identity map: training begins from a stable flow
        nn.init.zeros_(self.post.weight)
        nn.init.zeros_(self.post.bias)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None, reverse: bool
    ) -> torch.Tensor:
        x0, x1 = x[:, : self.half], x[:, self.half :]
        h = self.pre(x0) * mask
        m = self.post(self.enc(h, mask, g=g)) * mask
        x1 = (x1 - m) * mask if reverse else m + x1 * mask
        return torch.cat([x0, x1], dim=1)


class Flow(nn.Module):
    """A stack of couplings with channel flips in between, conditioned on the speaker."""

    def __init__(
        self,
        channels: int,
        hidden: int,
        kernel_size: int,
        n_layers: int,
        n_flows: int,
        gin_channels: int,
    ):
        super().__init__()
        self.couplings = nn.ModuleList(
            ResidualCoupling(channels, hidden, kernel_size, n_layers, gin_channels)
            for _ in range(n_flows)
        )

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None, reverse: bool = False
    ) -> torch.Tensor:
        """x ``[B, C, T]`` -> ``[B, C, T]``; ``reverse`` runs the inverse map."""
        if not reverse:
            for c in self.couplings:
                x = torch.flip(c(x, mask, g, reverse=False), [1])
        else:
            for c in reversed(self.couplings):
                x = c(torch.flip(x, [1]), mask, g, reverse=True)
        return x


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return -ctx.scale * grad, None


class SpeakerClassifier(nn.Module):
    """Predicts the speaker embedding from the prior encoder's hidden states through a
    gradient-reversal layer: the encoder is pushed to drop the source singer's timbre."""

    def __init__(self, hidden: int, spk_dim: int, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Conv1d(hidden, hidden, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, 5, padding=2),
            nn.ReLU(),
        )
        self.out = nn.Linear(hidden, spk_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, H, T]``, mask ``[B, 1, T]`` -> ``[B, spk_dim]``."""
        x = _GradReverse.apply(x, self.scale)
        h = self.net(x) * mask
        h = h.sum(-1) / mask.sum(-1).clamp(min=1.0)
        return self.out(h)
