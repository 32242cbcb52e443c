"""Source vocals → the target voice.

1. F0 of the whole source (the voice's own F0 method unless overridden), then the pitch
   shift: fixed semitones, or ``auto`` — the shift that puts the most of the song's voiced
   frames inside the voice's 5–95 % range (:func:`svc_core.report.coverage.suggest_transpose`);
   the choice and the song's fit are reported.
2. The source is cut at silences into chunks of at most ~30 s (bounded memory; the prior's
   attention is quadratic in length); each chunk's content features are computed with
   context and the model synthesises it; chunks are joined with crossfades.
3. Silences of the source stay silent: frames that are both unvoiced and quiet are gated
   (so-vits users' "noise in silences"); an all-silent input is returned as zeros without
   running the model.
4. Output at the model rate and at 44.1 kHz.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.audio.dsp import peak_dbfs, resample, to_mono
from svc_core.audio.io import load_audio, save_wav
from svc_core.content.extract import ContentExtractor, ContentParams
from svc_core.convert.chunks import ChunkParams, convert_in_chunks
from svc_core.errors import BadAudioError, BadInputError
from svc_core.f0.base import F0Params, extract_f0
from svc_core.progress import ProgressFn, StopFn, check_stop, sub_progress
from svc_core.report.coverage import source_fit
from svc_core.utils import ModelCache

OUTPUT_SR = 44100
MAX_TRANSPOSE = 24


@dataclass(frozen=True)
class ConvertParams:
    """Conversion settings.

    Attributes:
        transpose: semitones, or None for automatic (needs the voice's reference pitch).
        f0: F0 extraction (use the voice's method; ``hop_s`` is set to the model's hop).
        content: content encoders (the same checkpoints the voice was trained with).
        chunks: chunking of long inputs.
        gate_dbfs: unvoiced source frames quieter than this are silenced in the output.
        noise_scale: the prior's sampling noise (0 = its mean; deterministic either way,
            the noise is seeded).
        retrieval_ratio: blend of the source's content features with their nearest frames
            of the voice's training features (0 = off; needs the voice's retrieval index).
        protect: RVC's consonant protection: on unvoiced frames keep ``1 - protect`` of the
            original features (0.5 = off; default 0.33, RVC's).
        volume_envelope: RVC's ``rms_mix_rate``: 1 keeps the output's own loudness, 0 gives
            it the source's envelope.
    """

    transpose: float | None = 0.0
    f0: F0Params = field(default_factory=F0Params)
    content: ContentParams = field(default_factory=ContentParams)
    chunks: ChunkParams = field(default_factory=ChunkParams)
    gate_dbfs: float = -50.0
    noise_scale: float = 0.5
    retrieval_ratio: float = 0.0
    protect: float = 0.33
    volume_envelope: float = 1.0

    def __post_init__(self) -> None:
        for name, hi in (("retrieval_ratio", 1.0), ("protect", 0.5), ("volume_envelope", 1.0)):
            if not 0.0 <= getattr(self, name) <= hi:
                raise BadInputError(f"{name} must lie in [0, {hi}]")
        if self.transpose is not None and not -MAX_TRANSPOSE <= self.transpose <= MAX_TRANSPOSE:
            raise BadInputError(f"transpose must lie within ±{MAX_TRANSPOSE} semitones")


@dataclass
class ConvertResult:
    audio: np.ndarray  # [T_model] at sample_rate
    sample_rate: int
    audio_44k: np.ndarray  # [T_44k]
    transpose: float
    transpose_mode: str  # "manual" | "auto"
    fit: dict[str, Any] | None  # the song's fit to the voice's range (SourceFit.to_dict())
    source_f0: np.ndarray  # [N] Hz at the model's frame rate, before the shift
    seconds: float  # source duration
    elapsed_s: float

    @property
    def real_time_factor(self) -> float:
        return self.elapsed_s / max(self.seconds, 1e-9)

    def summary(self) -> dict[str, Any]:
        return {
            "transpose": {
                "semitones": self.transpose,
                "mode": self.transpose_mode,
                "fit": self.fit,
            },
            "seconds": round(self.seconds, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "real_time_factor": round(self.real_time_factor, 4),
            "sample_rate": self.sample_rate,
        }


# a worker serves a few voices; do not hoard GPU memory
_MODELS: ModelCache[tuple[str, int, int, str, str], Any] = ModelCache(max_size=4)


def load_voice_model_cached(
    path: str | os.PathLike, device: str = "cpu", hparams: str | os.PathLike | None = None
):
    """:func:`svc_core.model.inference.load_voice_model`, loaded once per process and file
    (``hparams``: a 5.0 config YAML for 5.0 files without ``hp_str``)."""
    from svc_core.model.inference import load_voice_model

    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, int(st.st_mtime_ns), device, str(hparams or ""))
    return _MODELS.get_or_load(key, lambda: load_voice_model(p, hparams=hparams, device=device))


def reference_f0_from_histogram(histogram: list[dict], hop_s: float) -> np.ndarray:
    """Rebuild a pitch distribution (Hz per frame) from a coverage report's histogram."""
    parts = [
        np.full(int(round(b["seconds"] / hop_s)), 440.0 * 2.0 ** ((b["midi"] - 69) / 12.0))
        for b in histogram
        if b.get("seconds", 0) > 0
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _gate(mono: np.ndarray, sr: int, f0: np.ndarray, hop_s: float, gate_dbfs: float):
    """Per-sample gain at ``sr``: 0 where the source is unvoiced and quiet, 1 elsewhere."""
    hop = sr * hop_s
    n = len(f0)
    idx = (np.arange(n)[:, None] * hop + np.arange(int(hop))[None, :]).astype(np.int64)
    idx = np.clip(idx, 0, len(mono) - 1)
    rms_db = 10 * np.log10(np.mean(np.square(mono[idx], dtype=np.float64), axis=1) + 1e-12)
    keep = ((f0 > 0) | (rms_db > gate_dbfs)).astype(np.float32)
    # widen kept regions by two frames so consonant onsets and release tails survive
    k = np.convolve(keep, np.ones(5, np.float32), mode="same") > 0
    frame_of_sample = np.minimum((np.arange(len(mono)) / hop).astype(np.int64), n - 1)
    gain = k[frame_of_sample].astype(np.float32)
    ramp = max(1, int(0.01 * sr))  # 10-ms fades instead of hard switching
    return np.convolve(gain, np.ones(ramp, np.float32) / ramp, mode="same")


def convert_vocals(
    audio: np.ndarray,
    sr: int,
    model: Any,
    params: ConvertParams,
    *,
    speaker: np.ndarray | None = None,
    reference_f0: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    cache_dir: str | os.PathLike | None = None,
    index: Any = None,
) -> ConvertResult:
    """Convert ``[C, T]``/``[T]`` vocals at ``sr`` with a loaded voice ``model``.

    Args:
        model: a :class:`svc_core.model.inference.VoiceModel`.
        speaker: target embedding ``[256]`` (default: the model's own).
        reference_f0: the voice's pitch distribution (Hz per frame), for ``transpose=None``.
        cache_dir: keep converted chunks there so an interrupted call resumes (see
            :func:`convert_in_chunks`); it must be specific to these inputs and parameters.
        index: the voice's :class:`svc_core.retrieval.VoiceIndex` (``retrieval_ratio`` > 0).
    """
    t0 = time.monotonic()
    report = progress or (lambda _s, _f: None)
    mono = to_mono(np.asarray(audio, np.float32))
    if mono.size == 0 or not np.isfinite(mono).all():
        raise BadAudioError("the source vocals are empty or contain invalid samples")
    seconds = len(mono) / sr
    hop_s = model.hop_length / model.sample_rate
    f0_params = replace(params.f0, hop_s=hop_s)
    n_model = int(round(seconds * model.sample_rate))
    if peak_dbfs(mono) < -60.0:  # silence in, silence out: nothing for the model to do
        f0 = np.zeros(max(1, math.ceil(seconds / hop_s)), np.float32)
        return ConvertResult(
            np.zeros(n_model, np.float32),
            model.sample_rate,
            np.zeros(int(round(seconds * OUTPUT_SR)), np.float32),
            float(params.transpose or 0.0),
            "manual" if params.transpose is not None else "auto",
            None,
            f0,
            seconds,
            time.monotonic() - t0,
        )
    report("convert", 0.0)
    # the pitch of the whole song comes first (auto-transpose needs all of it): its progress
    # is the first tenth of the stage
    f0 = extract_f0(
        mono,
        sr,
        f0_params,
        progress=lambda f: report("convert", 0.1 * f),
        should_stop=should_stop,
    )
    check_stop(should_stop)
    report("convert", 0.1)
    fit = None
    if reference_f0 is not None and reference_f0.size:
        fit = source_fit(f0, reference_f0, max_shift=MAX_TRANSPOSE).to_dict()
    if params.transpose is None:
        if fit is None:
            raise BadInputError(
                "automatic transpose needs the voice's pitch range; preprocess the voice or "
                "give a transpose in semitones"
            )
        transpose, mode = float(fit["suggested_transpose"]), "auto"
    else:
        transpose, mode = float(params.transpose), "manual"
    f0_shifted = (f0 * np.float32(2.0 ** (transpose / 12.0))).astype(np.float32)
    extractor = ContentExtractor(params.content)
    frames_per_s = 1.0 / hop_s
    if params.retrieval_ratio > 0 and index is None:
        raise BadInputError(
            "retrieval_ratio > 0 needs the voice's retrieval index; this voice has none "
            "(build it from its training features, or convert with retrieval_ratio 0)"
        )
    if index is not None:
        index.check_fits(model.config.model.ppg_dim, model.config.model.vec_dim)

    def convert_piece(piece: np.ndarray, start: int) -> np.ndarray:
        n_frames = max(1, math.ceil(len(piece) / sr * frames_per_s - 1e-6))
        first = start / sr * frames_per_s
        idx = np.clip(np.round(first + np.arange(n_frames)).astype(np.int64), 0, len(f0) - 1)
        feats = extractor.extract(piece, sr)
        if index is not None and params.retrieval_ratio > 0:
            n_c = max(len(v) for v in feats.values())
            c_idx = np.round(first + np.arange(n_c) * frames_per_s / 50.0).astype(np.int64)
            voiced = f0[np.clip(c_idx, 0, len(f0) - 1)] > 0
            feats = index.apply(feats, params.retrieval_ratio, voiced, params.protect)
        return model.synthesize(
            feats.get("ppg"),
            feats.get("vec"),
            f0_shifted[idx],
            speaker,
            content_rate=50.0,
            f0_rate=frames_per_s,
            n_frames=n_frames,
            noise_scale=params.noise_scale,
            seed=0,
        )

    out = convert_in_chunks(
        mono,
        sr,
        convert_piece,
        params.chunks,
        out_sr=model.sample_rate,
        progress=sub_progress(report, "convert", 0.1, 0.95),
        should_stop=should_stop,
        cache_dir=cache_dir,
    )
    out = out[:n_model] if len(out) >= n_model else np.pad(out, (0, n_model - len(out)))
    gain = _gate(mono, sr, f0, hop_s, params.gate_dbfs)
    out *= resample(gain, sr, model.sample_rate)[:n_model].clip(0.0, 1.0)
    if params.volume_envelope < 1.0:
        from svc_core.retrieval import mix_volume_envelope

        out = mix_volume_envelope(mono, sr, out, model.sample_rate, params.volume_envelope)
    out_44k = resample(out, model.sample_rate, OUTPUT_SR)
    n44 = int(round(seconds * OUTPUT_SR))
    out_44k = out_44k[:n44] if len(out_44k) >= n44 else np.pad(out_44k, (0, n44 - len(out_44k)))
    report("convert", 1.0)
    return ConvertResult(
        out.astype(np.float32),
        model.sample_rate,
        out_44k.astype(np.float32),
        transpose,
        mode,
        fit,
        f0,
        seconds,
        time.monotonic() - t0,
    )


def convert_file(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_path: str | os.PathLike,
    params: ConvertParams,
    *,
    speaker: np.ndarray | None = None,
    reference_f0: np.ndarray | None = None,
    device: str = "cpu",
    max_duration_s: float | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    cache_dir: str | os.PathLike | None = None,
    hparams: str | os.PathLike | None = None,
    index: str | os.PathLike | None = None,
) -> tuple[ConvertResult, Path, Path]:
    """Convert a vocals file; writes ``vocals_model_rate.wav`` and ``vocals.wav`` (44.1 kHz).

    ``model_path`` is any file :func:`~svc_core.model.inference.load_voice_model` reads
    (``hparams`` for 5.0 files without ``hp_str``; ``index``: the voice's ``.svcindex``).
    Returns ``(result, model_rate_path, path_44k)``.
    """
    from svc_core.retrieval import load_voice_index

    audio, sr = load_audio(src, max_duration_s=max_duration_s)
    model = load_voice_model_cached(model_path, device=device, hparams=hparams)
    voice_index = load_voice_index(index) if index is not None else None
    result = convert_vocals(
        audio,
        sr,
        model,
        params,
        speaker=speaker,
        reference_f0=reference_f0,
        progress=progress,
        should_stop=should_stop,
        cache_dir=cache_dir,
        index=voice_index,
    )
    out = Path(out_dir)
    a = save_wav(out / "vocals_model_rate.wav", result.audio, result.sample_rate)
    b = save_wav(out / "vocals.wav", result.audio_44k, OUTPUT_SR)
    return result, a, b
