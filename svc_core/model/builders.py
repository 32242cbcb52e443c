"""Config -> modules. The only place that knows how config fields map to constructor args."""

from __future__ import annotations

import dataclasses

import torch

from svc_core.model.config import SVCConfig, TrainConfig
from svc_core.model.discriminators import Discriminator
from svc_core.model.losses import MultiResolutionSTFTLoss
from svc_core.model.spectral import LinearSpectrogram, MelSpectrogram
from svc_core.model.synthesizer import SVCModel

_NOT_MODULE_ARGS = {
    "mpd_periods",
    "mpd_channels",
    "mpd_kernel_size",
    "mpd_stride",
    "mrd_resolutions",
    "mrd_channels",
    "msd_channels",
    "lrelu_slope",
}


def build_generator(config: SVCConfig, inference_only: bool = False) -> SVCModel:
    """The generator; ``inference_only`` leaves out ``emb_g``, ``enc_q`` and the speaker
    classifier (5.0's ``SynthesizerInfer``)."""
    m = config.model
    kwargs = {
        f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name not in _NOT_MODULE_ARGS
    }
    return SVCModel(
        spec_channels=config.audio.spec_channels,
        segment_frames=config.audio.segment_frames,
        sample_rate=config.audio.sample_rate,
        inference_only=inference_only,
        **kwargs,
    )


def build_discriminator(config: SVCConfig) -> Discriminator:
    m = config.model
    return Discriminator(
        m.mrd_resolutions,
        m.mrd_channels,
        m.mpd_periods,
        m.mpd_channels,
        m.mpd_kernel_size,
        m.mpd_stride,
        m.msd_channels,
        m.lrelu_slope,
    )


def build_linear_spectrogram(config: SVCConfig) -> LinearSpectrogram:
    a = config.audio
    return LinearSpectrogram(a.n_fft, a.hop_length, a.win_length)


def build_mel_spectrogram(config: SVCConfig) -> MelSpectrogram:
    a = config.audio
    return MelSpectrogram(
        a.sample_rate, a.n_fft, a.hop_length, a.win_length, a.n_mels, a.f_min, a.f_max
    )


def build_stft_loss(config: SVCConfig) -> MultiResolutionSTFTLoss:
    return MultiResolutionSTFTLoss(config.model.mrd_resolutions)


def build_optimizer(params, train: TrainConfig, lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """AdamW as 5.0 (the discriminator's gets ``lr_scale = 1 / accum_step``)."""
    return torch.optim.AdamW(
        params, lr=train.learning_rate * lr_scale, betas=tuple(train.betas), eps=train.eps
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """Exponential decay, stepped once per epoch (as so-vits-svc 5.0)."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=train.lr_decay)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
