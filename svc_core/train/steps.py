"""One training step and one validation pass of so-vits-svc 5.0's recipe, as plain functions
on a :class:`~svc_core.train.state.TrainState` (``vits_extend/train.py``)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from svc_core.model.commons import slice_segments
from svc_core.model.config import SVCConfig
from svc_core.model.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adv_loss,
    kl_loss,
)
from svc_core.train.state import TrainState


@dataclass
class StepContext:
    """What a step needs besides the state: the config, where it runs, the loss front-ends."""

    config: SVCConfig
    device: torch.device
    spec: torch.nn.Module  # linear spectrogram (the posterior's input)
    mel: torch.nn.Module  # log-mel (the mel loss and validation)
    stft_loss: torch.nn.Module
    batches_per_epoch: int
    amp_dtype: torch.dtype | None = None

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)


def _backward(loss: torch.Tensor, scaler: torch.amp.GradScaler) -> bool:
    if not torch.isfinite(loss.detach()):
        return False  # skip: one bad batch must not poison the weights
    scaler.scale(loss).backward()
    return True


def _step(module, opt, scaler: torch.amp.GradScaler, accumulated: int, grad_clip: float) -> bool:
    """Average ``accumulated`` batches' gradients, clip (if configured), step, zero."""
    scaler.unscale_(opt)
    if accumulated > 1:
        for p in module.parameters():
            if p.grad is not None:
                p.grad /= accumulated
    clip = grad_clip if grad_clip > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
    ok = True
    if not scaler.is_enabled() and not torch.isfinite(norm):
        ok = False  # skip the update
    else:
        scaler.step(opt)  # with fp16 the scaler itself skips non-finite gradients
        scaler.update()
    opt.zero_grad(set_to_none=True)
    return ok


def train_step(ts: TrainState, ctx: StepContext, batch: dict[str, Any]) -> tuple[dict, bool]:
    """One batch: generator then discriminator, as 5.0.

    The generator's gradients accumulate over ``accum_step`` batches (divided by it) and its
    optimiser steps on the last of them or at the end of an epoch; the discriminator (at
    ``lr / accum_step``) steps on every batch. The caller advances the counters.

    Returns:
        ``(losses, ok)``: float losses by name, and whether both updates were finite.
    """
    t, a, dev = ctx.config.train, ctx.config.audio, ctx.device
    nb = dev.type == "cuda"
    wav = batch["wav"].to(dev, non_blocking=nb)  # [B, 1, T * hop]
    f0 = batch["f0"].to(dev, non_blocking=nb)
    spk = batch["spk"].to(dev, non_blocking=nb)
    lengths = batch["lengths"].to(dev, non_blocking=nb)
    ppg = batch["ppg"].to(dev, non_blocking=nb) if batch["ppg"] is not None else None
    vec = batch["vec"].to(dev, non_blocking=nb) if batch["vec"] is not None else None
    with torch.no_grad():
        spec = ctx.spec(wav[:, 0])  # [B, F, T]

    # generator: adv + 2 fm + mel + 9 stft + 0.2 (kl_f + kl_r / 2) + 2 spk
    gen, disc = ts.generator, ts.discriminator
    disc.requires_grad_(False)
    with ctx.autocast():
        out = gen(ppg, vec, f0, spec, spk, lengths)
        fake = out.audio  # [B, 1, segment]
        real = slice_segments(wav[:, 0], out.starts * a.hop_length, a.segment_size)
        real = real.unsqueeze(1)
        d_fake = disc(fake)
        with torch.no_grad():
            d_real = disc(real)
        adv = generator_adv_loss(d_fake)
        fm = feature_matching_loss(d_real, d_fake)
        kl_f = kl_loss(out.z_f, out.logs_q, out.m_p, out.logs_p, out.logdet_f, out.mask)
        kl_r = kl_loss(out.z_r, out.logs_p, out.m_q, out.logs_q, out.logdet_r, out.mask)
    fake32, real32 = fake[:, 0].float(), real[:, 0].float()
    mel = F.l1_loss(ctx.mel(fake32), ctx.mel(real32))
    sc, mag = ctx.stft_loss(fake32, real32)
    spk_loss = (1.0 - F.cosine_similarity(spk, out.spk_pred.float(), dim=-1)).mean()
    loss_g = (
        adv
        + t.c_fm * fm
        + t.c_mel * mel
        + t.c_stft * (sc + mag)
        + t.c_kl * (kl_f + t.c_kl_r * kl_r)
        + t.c_spk * spk_loss
    )
    c = ts.counters
    ok_g = _backward(loss_g, ts.scaler_g)
    c.accum += 1
    if c.accum >= t.accum_step or c.batch + 1 >= ctx.batches_per_epoch:
        ok_g = _step(gen, ts.optim_g, ts.scaler_g, c.accum, t.grad_clip) and ok_g
        c.accum = 0
    disc.requires_grad_(True)

    with ctx.autocast():
        d_fake = disc(fake.detach())
        d_real = disc(real)
        loss_d = discriminator_loss(d_real, d_fake)
    ok_d = _backward(loss_d, ts.scaler_d) and _step(disc, ts.optim_d, ts.scaler_d, 1, t.grad_clip)
    vals = {
        "loss_g": loss_g,
        "loss_d": loss_d,
        "mel": mel,
        "stft": sc + mag,
        "kl_f": kl_f,
        "kl_r": kl_r,
        "adv": adv,
        "fm": fm,
        "spk": spk_loss,
    }
    return {k: float(v.detach()) for k, v in vals.items()}, ok_g and ok_d


@torch.no_grad()
def evaluate(
    ts: TrainState, ctx: StepContext, items: list[dict[str, Any]]
) -> tuple[float, list[torch.Tensor]]:
    """Mel L1 of the conversion path (content + F0 + speaker -> audio) on validation items,
    as 5.0's validation. The caller forks and seeds the RNG.

    Returns:
        ``(mean mel L1, generated audio [1, T] per item)``.
    """
    gen = ts.generator
    gen.eval()
    total, audios = 0.0, []
    try:
        for item in items:

            def one(x):
                return None if x is None else x[None].to(ctx.device)

            with ctx.autocast():
                audio = gen.infer(
                    one(item["ppg"]), one(item["vec"]), one(item["f0"]), one(item["spk"])
                )
            audio = audio.float()
            total += float(F.l1_loss(ctx.mel(audio), ctx.mel(one(item["wav"]).float())))
            audios.append(audio)
    finally:
        gen.train()
    return total / max(len(items), 1), audios
