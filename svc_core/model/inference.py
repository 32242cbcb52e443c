"""Load a trained generator and synthesize audio from content features, F0 and a speaker.

This is the model half of conversion; the convert stage extracts features from the source
vocals, picks the pitch shift and cuts long audio into chunks (the prior encoder's
attention is quadratic in length: keep chunks to about 30 s), then calls
:meth:`VoiceModel.synthesize` per chunk.

:func:`load_voice_model` reads every model file a user may have: our voice packages and
training checkpoints, and so-vits-svc 5.0's pretrain, training checkpoint and export
(:mod:`svc_core.model.sovits5`). One chunk of :meth:`VoiceModel.synthesize` with
``noise_scale=0`` and 5.0's excitation computes what 5.0's ``svc_inference.py`` computes;
weight norm is folded into plain weights at load time (same numbers, less work).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.align import align_to_frames
from svc_core.model.builders import build_generator
from svc_core.model.config import SVCConfig, config_from_dict
from svc_core.model.sovits5 import (
    TRAIN_ONLY_PREFIXES,
    check_state_fits,
    is_sovits5_dict,
    parse_sovits5,
    read_torch_file,
)


def _freeze(module: torch.nn.Module) -> None:
    """Exact speed-ups for conversion: fold weight-norm parametrisations into plain weights
    and precompute the SnakeBeta constants (same output up to float rounding)."""
    from torch.nn.utils import parametrize

    from svc_core.model.decoder import SnakeBeta

    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        if isinstance(m, SnakeBeta):
            m.freeze()


class VoiceModel:
    """A generator ready for conversion.

    Attributes:
        config: the model config.
        speaker: ``[spk_dim]`` default target embedding (from a voice package), or None.
        info: provenance (the package's ``voice.json`` or the checkpoint's state).
        sample_rate, hop_length: output rate and samples per model frame.
        frame_rate: model frames per second (``sample_rate / hop_length``).
    """

    def __init__(
        self,
        config: SVCConfig,
        generator_state: dict[str, Any],
        speaker: np.ndarray | None = None,
        info: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ):
        self.config = config
        self.speaker = None if speaker is None else np.asarray(speaker, np.float32).reshape(-1)
        self.info = dict(info or {})
        self.device = torch.device(device)
        self.sample_rate = config.audio.sample_rate
        self.hop_length = config.audio.hop_length
        self.frame_rate = self.sample_rate / self.hop_length
        gen = build_generator(config, inference_only=True)
        state = {k: v for k, v in generator_state.items() if not k.startswith(TRAIN_ONLY_PREFIXES)}
        source = str(self.info.get("config_source", "its config"))
        check_state_fits(
            gen, state, f"the generator in {self.info.get('file', 'the model file')}", source
        )
        gen.load_state_dict(state, strict=True)
        gen.eval()
        _freeze(gen)
        self.generator = gen.to(self.device)

    def n_frames_for(self, seconds: float) -> int:
        """Model frames that cover ``seconds`` of audio (rounded up)."""
        return max(1, math.ceil(seconds * self.frame_rate - 1e-6))

    @torch.no_grad()
    def synthesize(
        self,
        ppg: np.ndarray | None,
        vec: np.ndarray | None,
        f0_hz: np.ndarray,
        spk: np.ndarray | None = None,
        *,
        content_rate: float = 50.0,
        f0_rate: float | None = None,
        n_frames: int | None = None,
        noise_scale: float = 1.0,
        seed: int | None = 0,
        excitation: np.ndarray | None = None,
    ) -> np.ndarray:
        """Content + F0 + target speaker -> audio.

        Features are mapped onto model frames exactly as the training loader does
        (:func:`svc_core.model.align.align_to_frames`).

        Args:
            ppg: ``[T_c, ppg_dim]`` whisper PPG (None if the model has ``ppg_dim == 0``).
            vec: ``[T_c, vec_dim]`` HuBERT-soft (None if ``vec_dim == 0``).
            f0_hz: ``[T_f]`` F0 in Hz (0 = unvoiced), already pitch-shifted.
            spk: ``[spk_dim]`` target speaker embedding (default: the package's).
            content_rate: frames per second of ``ppg``/``vec``.
            f0_rate: frames per second of ``f0_hz`` (default: the model frame rate).
            n_frames: model frames to produce (default: the duration of ``f0_hz``).
            noise_scale: prior sampling noise (0: the prior mean; 5.0 samples with 1).
            seed: seed of the sampling noise (None: the global RNG).
            excitation: ``[n_frames * hop_length]`` NSF source to use instead of the one
                generated from the F0 (5.0's ``pitch2source``, whose phases are random).

        Returns:
            float32 ``[n_frames * hop_length]`` at :attr:`sample_rate`.
        """
        m = self.config.model
        f0 = np.asarray(f0_hz, dtype=np.float32).reshape(-1)
        if f0.size == 0:
            raise BadInputError("the F0 curve is empty")
        if not np.all(np.isfinite(f0)) or np.any(f0 < 0):
            raise BadInputError("the F0 curve has negative or non-finite values")
        f0_rate = self.frame_rate if f0_rate is None else float(f0_rate)
        if n_frames is None:
            n_frames = max(1, int(round(f0.size / f0_rate * self.frame_rate)))
        if n_frames < 1:
            raise BadInputError("n_frames must be >= 1")
        seconds = n_frames / self.frame_rate

        def content(x: np.ndarray | None, dim: int, name: str) -> torch.Tensor | None:
            if dim <= 0:
                return None
            if x is None:
                raise BadInputError(f"this voice model needs '{name}' content features")
            x = np.asarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape[1] != dim or x.shape[0] < 1:
                raise BadInputError(f"'{name}' must be [frames, {dim}], got {list(x.shape)}")
            if not np.all(np.isfinite(x)):
                raise BadInputError(f"'{name}' has non-finite values")
            dur = x.shape[0] / content_rate
            if dur + max(2.0 / content_rate, 0.05) < seconds:
                raise BadInputError(
                    f"'{name}' covers {dur:.2f} s but {seconds:.2f} s of audio were asked for"
                )
            a = align_to_frames(x, content_rate, n_frames, self.hop_length, self.sample_rate)
            return torch.from_numpy(np.ascontiguousarray(a))[None].to(self.device)

        ppg_t = content(ppg, m.ppg_dim, "ppg")
        vec_t = content(vec, m.vec_dim, "vec")
        f0_a = align_to_frames(f0, f0_rate, n_frames, self.hop_length, self.sample_rate)
        if spk is None:
            if self.speaker is None:
                raise BadInputError("no target speaker embedding given and none in the model")
            spk = self.speaker
        spk_a = np.asarray(spk, dtype=np.float32).reshape(-1)
        if spk_a.shape[0] != m.spk_dim or not np.all(np.isfinite(spk_a)):
            raise BadInputError(f"the speaker embedding must be [{m.spk_dim}] finite values")
        if not np.any(spk_a):
            raise BadInputError("the speaker embedding is all zeros")

        f0_t = torch.from_numpy(np.ascontiguousarray(f0_a))[None].to(self.device)
        spk_t = torch.from_numpy(spk_a)[None].to(self.device)
        exc_t = None
        if excitation is not None:
            e = np.asarray(excitation, dtype=np.float32).reshape(-1)
            if e.shape[0] != n_frames * self.hop_length or not np.all(np.isfinite(e)):
                raise BadInputError(
                    f"the excitation must be {n_frames * self.hop_length} finite samples, "
                    f"got {e.shape[0]}"
                )
            exc_t = torch.from_numpy(e)[None].to(self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            audio = self.generator.infer(
                ppg_t, vec_t, f0_t, spk_t, noise_scale=noise_scale, excitation=exc_t
            )
        return audio[0].float().cpu().numpy()


def load_voice_model(
    path: str | os.PathLike,
    hparams: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> VoiceModel:
    """Load any voice model file for conversion.

    Accepted: an svc-studio voice package (``.zip``), an svc-studio training checkpoint, and
    so-vits-svc 5.0's pretrain ``{model_g, model_d}``, training checkpoint
    ``{model_g, model_d, optim_g, optim_d, step, epoch, hp_str}`` and export ``{model_g}``.

    Args:
        path: the file.
        hparams: for 5.0 files without ``hp_str``: their hparams YAML (5.0's format);
            without it such a file is read with 5.0's ``configs/base.yaml`` sizes.
        device: where the generator runs.

    Raises:
        BadInputError: the file does not exist, or the hparams are unusable.
        IncompatibleError: unknown format or version, damaged file, or weights that do not
            fit the sizes (the message names what differs).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"voice model {path} does not exist")
    if path.suffix.lower() == ".zip":
        from svc_core.model.package import load_voice_package

        pkg = load_voice_package(path)
        info = {**pkg.info, "file": path.name, "config_source": "its config.yaml"}
        return VoiceModel(pkg.config, pkg.generator_state, pkg.speaker, info, device)
    obj = read_torch_file(path)
    if is_sovits5_dict(obj):
        f = parse_sovits5(obj, path, hparams)
        info = {
            "format": "sovits5",
            "layout": f.layout,
            "file": path.name,
            "config_source": f.config_source,
            "step": f.step,
            "epoch": f.epoch,
        }
        return VoiceModel(f.config, f.generator, None, info, device)
    from svc_core.train.checkpoint import check_checkpoint

    ckpt = check_checkpoint(obj, path)
    config = config_from_dict(ckpt["config"])
    info = {"checkpoint": str(path), "file": path.name, "config_source": "its config",
            **ckpt.get("state", {})}  # fmt: skip
    return VoiceModel(config, ckpt["generator"], None, info, device)


__all__ = ["IncompatibleError", "VoiceModel", "load_voice_model"]
