"""Whisper PPG: the audio encoder of an official OpenAI Whisper checkpoint, any size.

The checkpoint is the ``.pt`` file OpenAI publishes (``tiny`` … ``large-v3``): a
``torch.save`` dict ``{"dims": {n_mels, n_audio_ctx, n_audio_state, n_audio_head,
n_audio_layer, n_vocab, n_text_*}, "model_state_dict": {...}}``. Only the ``encoder.*``
weights are used. The module below is written here (not the ``openai-whisper`` package, which
would pull in tiktoken/numba and its decoder for nothing) with the same parameter names, so
the official state dict loads strictly.

Features (so-vits-svc 5.0's "PPG") are the encoder's hidden states after ``ln_post``,
``n_audio_state`` wide (large-v2: 1280, medium: 1024, small: 768, base: 512, tiny: 384) at
50 frames per second. As 5.0 does (``whisper/inference.py``, ``prepare/preprocess_ppg.py``),
the last quarter of the encoder's blocks is left out by default (large-v2: blocks 0-23 of
32, then ``ln_post``): that is what 5.0's pretrain and its users' models were trained on.
``sovits5_layers=False`` runs every block.

Long audio: the encoder sees at most ``n_audio_ctx`` frames (30 s). Audio is cut into
explicit windows of ``window_s`` seconds, each encoded on its own and concatenated, so a
95-second input gives 95 seconds of frames (openai-whisper's ``pad_or_trim`` would silently
drop everything past 30 s). By default a window is encoded at its own length with the
positional embedding truncated to it, as so-vits-svc 5.0 trains and converts (so features
match base models trained on 5.0's features); ``full_window=True`` zero-pads every window to
30 s as OpenAI's transcription does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svc_core.content.base import (
    CONTENT_HOP,
    CONTENT_SR,
    ContentEncoder,
    cached_model,
    check_audio_16k,
    checkpoint_path,
    content_frames,
    load_error_detail,
    load_torch_checkpoint,
    precision_dtype,
)
from svc_core.errors import BadInputError, IncompatibleError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import resolve_device

N_FFT = 400
MEL_HOP = 160  # 100 mel frames/s; conv2 (stride 2) halves that to 50 encoder frames/s
WINDOW_S_MAX = 30.0

_DIM_KEYS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


# --- log-mel front end ---------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _mel_filters(n_mels: int) -> np.ndarray:
    """Slaney-normalised mel filterbank ``[n_mels, 201]`` — what Whisper's mel_filters.npz holds."""
    import librosa

    return librosa.filters.mel(sr=CONTENT_SR, n_fft=N_FFT, n_mels=n_mels).astype(np.float32)


def log_mel_spectrogram(audio: Tensor, n_mels: int = 80) -> Tensor:
    """Whisper's log-mel spectrogram.

    Args:
        audio: float32 ``[T]`` or ``[B, T]`` at 16 kHz (``T > 200``).
        n_mels: 80, or 128 for large-v3.

    Returns:
        ``[n_mels, T // 160]`` (or ``[B, n_mels, T // 160]``): log10 power clamped at 1e-10,
        floored at (max − 8) per item, scaled by ``(x + 4) / 4``.
    """
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, MEL_HOP, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2  # whisper drops the last STFT frame
    filters = torch.from_numpy(_mel_filters(n_mels)).to(audio.device)
    mel = filters @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


# --- the encoder module (parameter names = openai-whisper's AudioEncoder) -------------------


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Whisper's fixed sinusoidal positional embedding ``[length, channels]``."""
    if channels % 2:
        raise IncompatibleError(f"Whisper width {channels} must be even.")
    log_inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-log_inc * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class _SelfAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, N, C]`` → ``[B, N, C]``; non-causal, no mask (the encoder has none)."""
        b, n, c = x.shape
        h = self.n_head

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, h, c // h).transpose(1, 2)

        # Whisper scales q and k by d^-0.25 each; SDPA's default d^-0.5 on q·k is the same.
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = _SelfAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(
            nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state)
        )
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperAudioEncoder(nn.Module):
    """Whisper's audio encoder: conv1/conv2 (GELU), sinusoidal positions, pre-LN blocks, ln_post.

    Args:
        n_mels: mel bands of the input (80; 128 for large-v3).
        n_ctx: maximum encoder frames (1500 = 30 s).
        n_state: width (= feature dim).
        n_head: attention heads.
        n_layer: residual attention blocks.
    """

    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int):
        super().__init__()
        self.n_layer = n_layer
        if n_state % n_head:
            raise IncompatibleError(f"Whisper width {n_state} is not divisible by {n_head} heads.")
        self.n_mels = n_mels
        self.n_ctx = n_ctx
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            _ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)
        )
        self.ln_post = nn.LayerNorm(n_state)

    def forward(self, mel: Tensor) -> Tensor:
        """``[B, n_mels, M]`` log-mel (``M <= 2 * n_ctx``) → ``[B, ceil(M / 2), n_state]``."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        n = x.shape[1]
        if n > self.n_ctx:
            raise BadInputError(f"Whisper window too long: {n} frames > {self.n_ctx}.")
        # Truncated positional embedding for windows shorter than 30 s (so-vits-svc 5.0).
        x = x + self.positional_embedding[:n].to(x.dtype)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


# --- loading -------------------------------------------------------------------------------


def _whisper_dims(ckpt: Any, path) -> dict[str, int]:
    if not (isinstance(ckpt, dict) and "dims" in ckpt and "model_state_dict" in ckpt):
        raise IncompatibleError(
            f"{path} is not an OpenAI Whisper checkpoint: it lacks 'dims' and "
            "'model_state_dict'. Use an official Whisper .pt file (e.g. large-v2.pt)."
        )
    dims = ckpt["dims"]
    if not isinstance(dims, dict) or any(
        not isinstance(dims.get(k), int) or dims[k] <= 0 for k in _DIM_KEYS
    ):
        raise IncompatibleError(
            f"{path}: Whisper 'dims' must hold positive integers {', '.join(_DIM_KEYS)}."
        )
    return {k: int(dims[k]) for k in _DIM_KEYS}


def sovits5_blocks(n_layer: int) -> int:
    """Blocks so-vits-svc 5.0 keeps: it deletes the last ``n_layer // 4`` (large-v2: 24 of 32)."""
    return n_layer - n_layer // 4


def load_whisper_encoder(
    path, device: str = "cpu", sovits5_layers: bool = False
) -> WhisperAudioEncoder:
    """Build and load the audio encoder of an official Whisper checkpoint (uncached).

    Args:
        path: the ``.pt`` file.
        device: torch device string.
        sovits5_layers: keep only the blocks 5.0 uses (:func:`sovits5_blocks`); the weights
            are still checked strictly against the whole checkpoint first.

    Raises:
        IncompatibleError: not a torch file, not the Whisper layout, or weights that do not
            fit the declared dims.
    """
    ckpt = load_torch_checkpoint(path, "a Whisper model")
    dims = _whisper_dims(ckpt, path)
    state = ckpt["model_state_dict"]
    enc_state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc_state:
        raise IncompatibleError(f"{path}: the Whisper checkpoint has no encoder weights.")
    model = WhisperAudioEncoder(
        dims["n_mels"],
        dims["n_audio_ctx"],
        dims["n_audio_state"],
        dims["n_audio_head"],
        dims["n_audio_layer"],
    )
    try:
        model.load_state_dict(enc_state, strict=True)
    except RuntimeError as exc:
        raise IncompatibleError(
            f"{path}: the encoder weights do not match the checkpoint's dims {dims}: "
            f"{load_error_detail(exc)}"
        ) from exc
    del ckpt, state, enc_state
    if sovits5_layers:
        del model.blocks[sovits5_blocks(dims["n_audio_layer"]) :]
    return model.eval().requires_grad_(False).to(device)


# --- the encoder backend -------------------------------------------------------------------


@dataclass(frozen=True)
class WhisperParams:
    """Options of the Whisper PPG encoder.

    Attributes:
        checkpoint: path of the official ``.pt`` file.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        precision: ``fp32``, or ``fp16`` (CUDA only; halves memory for large-v2).
        window_s: window length in seconds, at most 30 and a multiple of 0.02 s.
        full_window: zero-pad each window to 30 s (OpenAI) instead of encoding it at its own
            length (so-vits-svc 5.0, the default).
        batch_windows: full windows encoded per forward pass (speeds up GPUs on long audio).
        sovits5_layers: leave out the last quarter of the blocks, as 5.0 (the default).
    """

    checkpoint: str
    device: str = "cpu"
    precision: str = "fp32"
    window_s: float = 30.0
    full_window: bool = False
    batch_windows: int = 1
    sovits5_layers: bool = True


def window_samples(window_s: float, n_ctx: int) -> int:
    """Window length in samples: a whole number of hops that fits the encoder's context."""
    hops = round(window_s * CONTENT_SR / CONTENT_HOP)
    if hops <= 0 or abs(hops * CONTENT_HOP - window_s * CONTENT_SR) > 1e-6 * CONTENT_SR:
        raise BadInputError(f"window_s={window_s} must be a positive multiple of 0.02 s.")
    if hops > n_ctx or window_s > WINDOW_S_MAX:
        raise BadInputError(
            f"window_s={window_s} is longer than the encoder's context "
            f"({n_ctx * CONTENT_HOP / CONTENT_SR:g} s)."
        )
    return hops * CONTENT_HOP


def split_windows(num_samples: int, window: int) -> list[tuple[int, int]]:
    """``[start, end)`` sample ranges of consecutive windows covering ``num_samples``."""
    return [(s, min(s + window, num_samples)) for s in range(0, num_samples, window)]


class WhisperPPG(ContentEncoder):
    """Whisper encoder features ("PPG"): ``[ceil(T / 320), n_audio_state]`` at 50 frames/s."""

    name = "whisper"
    params_cls = WhisperParams

    def __init__(self, params: WhisperParams):
        self.params = params
        self.device = resolve_device(params.device)
        self.dtype = precision_dtype(params.precision, self.device)
        if params.batch_windows < 1:
            raise BadInputError("batch_windows must be at least 1.")
        path = checkpoint_path(params.checkpoint)

        def load() -> WhisperAudioEncoder:
            return load_whisper_encoder(path, self.device, params.sovits5_layers).to(self.dtype)

        self.model: WhisperAudioEncoder = cached_model(
            ("whisper", self.device, str(self.dtype), params.sovits5_layers), path, load
        )
        self.window = window_samples(params.window_s, self.model.n_ctx)

    @property
    def dim(self) -> int:
        return int(self.model.ln_post.weight.shape[0])

    @property
    def n_mels(self) -> int:
        return self.model.n_mels

    def _mel(self, chunk: np.ndarray) -> Tensor:
        """``[T_w]`` (a multiple of 320) → log-mel ``[n_mels, M]`` on the device.

        ``M = T_w // 160`` (own-length mode), or the full context (``2 * n_ctx``, 30 s) with
        ``full_window``: the audio is zero-padded before the mel, as OpenAI's transcription.
        """
        n = chunk.shape[0]
        if self.params.full_window:
            full = self.model.n_ctx * CONTENT_HOP
            mel = log_mel_spectrogram(
                torch.from_numpy(np.pad(chunk, (0, full - n))).to(self.device), self.n_mels
            )
            return mel[:, : 2 * self.model.n_ctx]
        return log_mel_spectrogram(torch.from_numpy(chunk).to(self.device), self.n_mels)

    @torch.inference_mode()
    def encode(
        self,
        audio_16k: np.ndarray,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> np.ndarray:
        audio = check_audio_16k(audio_16k)
        total = content_frames(audio.shape[0])
        # Zero-pad to whole hops so the last frame covers the audio's tail: N = ceil(T / 320).
        audio = np.pad(audio, (0, total * CONTENT_HOP - audio.shape[0]))
        spans = split_windows(audio.shape[0], self.window)
        out: list[np.ndarray] = []
        i = 0
        while i < len(spans):
            check_stop(should_stop)
            # Batch consecutive windows whose mels have equal length (in own-length mode all
            # but a shorter last window; with full_window every window is 30 s).
            length = spans[i][1] - spans[i][0]
            j = i + 1
            while (
                j < len(spans)
                and j - i < self.params.batch_windows
                and (self.params.full_window or spans[j][1] - spans[j][0] == length)
            ):
                j += 1
            mels = torch.stack([self._mel(audio[s:e]) for s, e in spans[i:j]])
            feats = self.model(mels.to(self.dtype))  # [B, M / 2, dim]
            for (s, e), f in zip(spans[i:j], feats, strict=True):
                out.append(f[: (e - s) // CONTENT_HOP].float().cpu().numpy())
            i = j
            if progress is not None:
                progress("content", i / len(spans))
        features = np.concatenate(out, axis=0).astype(np.float32, copy=False)
        assert features.shape[0] == total, (features.shape, total)
        return features
