"""Speaker embeddings: 256-d GE2E d-vectors from Resemblyzer's bundled encoder.

Resemblyzer (``resemblyzer.VoiceEncoder``) ships its pretrained weights inside the PyPI
package, so it works offline. The encoder is loaded once per process and device.

* :func:`speaker_embedding` — one utterance/slice → unit-norm ``[256]``. The audio is
  resampled to 16 kHz, its volume raised to −30 dBFS (Resemblyzer's ``normalize_volume``)
  and its silences removed, then ``embed_utterance`` averages 1.6-s partial embeddings.
  Silence removal defaults to an energy threshold rather than Resemblyzer's speech VAD
  (webrtcvad): on sustained sung tones that VAD is all-or-nothing (measured: it kept none of
  a 3-s 110 Hz vibrato tone with 3 harmonics, all of the same tone at 440 Hz);
  ``trim="vad"`` restores ``preprocess_wav``'s behaviour.
* :func:`centroid` — the singer's embedding: the L2-normalised mean of slice embeddings.
* :func:`save_spk` / :func:`load_spk` — ``<voice>.spk.npy``, float32 ``[256]`` (the format of
  so-vits-svc 5.0's ``speaker0.spk.npy``).

Audio that is silent, or has less than ``min_voiced_s`` of sound left after trimming, raises
:class:`~svc_core.errors.BadAudioError`; :func:`speaker_embeddings` can skip such slices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.audio.dsp import resample, rms_dbfs, to_mono
from svc_core.errors import BadAudioError, BadInputError, IncompatibleError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import ModelCache, atomic_write, resolve_device

SPK_DIM = 256
SPK_SR = 16000  # Resemblyzer's rate
SILENCE_DBFS = -70.0  # below this RMS level a slice is treated as silent

_ENCODERS: ModelCache[str, Any] = ModelCache()


@dataclass(frozen=True)
class SpeakerParams:
    """Options of the speaker embedding.

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        min_voiced_s: least voiced audio (after silence removal) for a usable embedding.
        trim: how silences are removed before embedding: ``energy`` (default: drop stretches
            more than ``top_db`` below the slice's peak), ``vad`` (Resemblyzer's
            ``preprocess_wav``: webrtcvad, tuned for speech, which drops some sustained sung
            tones entirely) or ``none``.
        top_db: threshold of the ``energy`` trim.
        rate: partial utterances per second (Resemblyzer's ``embed_utterance`` default 1.3).
        min_coverage: Resemblyzer's ``min_coverage`` of the last partial utterance.
        encoder: ``ge2e`` (Resemblyzer, the default) or ``sovits5`` (so-vits-svc 5.0's LSTM
            d-vector, :mod:`svc_core.speaker_sovits5`; its own trimming and normalisation).
        encoder_model: the ``sovits5`` encoder's ``best_model.pth.tar``.
    """

    device: str = "cpu"
    min_voiced_s: float = 0.5
    trim: str = "energy"
    top_db: float = 40.0
    rate: float = 1.3
    min_coverage: float = 0.75
    encoder: str = "ge2e"
    encoder_model: str | None = None

    def __post_init__(self) -> None:
        if self.encoder not in ("ge2e", "sovits5"):
            raise BadInputError(f"unknown speaker encoder '{self.encoder}' (ge2e or sovits5)")
        if self.encoder == "sovits5" and not self.encoder_model:
            raise BadInputError("the sovits5 speaker encoder needs its model file")


def _resemblyzer():
    """Import resemblyzer, hiding the deprecation warnings of its old dependencies
    (``scipy.ndimage.morphology``, webrtcvad's ``pkg_resources``) that would fill every log."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        import resemblyzer
        import resemblyzer.audio
        import resemblyzer.hparams
    return resemblyzer


def voice_encoder(device: str = "cpu"):
    """Resemblyzer's ``VoiceEncoder`` on ``device``, loaded once per process."""
    dev = resolve_device(device)

    def load():
        enc = _resemblyzer().VoiceEncoder(device=dev, verbose=False)
        enc.eval()
        return enc

    return _ENCODERS.get_or_load(dev, load)


def _trim_energy(wav: np.ndarray, top_db: float) -> np.ndarray:
    """Keep only the stretches within ``top_db`` of the peak level (25 ms frames, 10 ms hop)."""
    import librosa

    spans = librosa.effects.split(wav, top_db=top_db, frame_length=400, hop_length=160)
    if len(spans) == 0:
        return wav[:0]
    return np.concatenate([wav[a:b] for a, b in spans]).astype(np.float32)


def prepare_audio(audio: np.ndarray, sr: int, params: SpeakerParams = SpeakerParams()):
    """Mono 16 kHz audio ready for the encoder: volume-normalised, long silences removed.

    Returns:
        float32 ``[T']`` at 16 kHz.

    Raises:
        BadAudioError: empty, non-finite, silent, or too little voice left.
    """
    rz = _resemblyzer()
    ra, target_dbfs = rz.audio, rz.hparams.audio_norm_target_dBFS
    if sr <= 0:
        raise BadAudioError(f"Invalid sample rate {sr}.")
    mono = to_mono(np.asarray(audio, dtype=np.float32))
    if mono.size == 0:
        raise BadAudioError("The audio is empty: no speaker embedding can be computed.")
    if not np.all(np.isfinite(mono)):
        raise BadAudioError("The audio contains invalid samples (NaN or infinity).")
    if rms_dbfs(mono) < SILENCE_DBFS:
        raise BadAudioError("The audio is silent: no speaker embedding can be computed.")
    wav = resample(mono, sr, SPK_SR)
    wav = ra.normalize_volume(wav, target_dbfs, increase_only=True)
    # Resemblyzer's VAD converts to int16 without clipping: keep the samples in range.
    wav = np.clip(wav, -1.0, 1.0).astype(np.float32)
    if params.trim == "vad":
        wav = ra.trim_long_silences(wav).astype(np.float32)
    elif params.trim == "energy":
        wav = _trim_energy(wav, params.top_db)
    elif params.trim != "none":
        raise BadInputError(f"Unknown silence trim '{params.trim}': use energy, vad or none.")
    if wav.shape[0] < params.min_voiced_s * SPK_SR:
        raise BadAudioError(
            f"Too little voice for a speaker embedding: {wav.shape[0] / SPK_SR:.2f} s of voiced "
            f"audio, at least {params.min_voiced_s:g} s needed."
        )
    return wav


def speaker_embedding(
    audio: np.ndarray, sr: int, params: SpeakerParams = SpeakerParams()
) -> np.ndarray:
    """Speaker embedding of one utterance or slice (GE2E, or 5.0's with ``encoder="sovits5"``).

    Args:
        audio: ``[T]`` or ``[C, T]`` float audio at ``sr``.
        sr: its sample rate.
        params: options.

    Returns:
        float32 ``[256]``: GE2E's has unit L2 norm (all entries ≥ 0: it ends in a ReLU);
        5.0's is the mean of 10 unit-norm windows.

    Raises:
        BadAudioError: silent, invalid or too little voice (see :func:`prepare_audio`).
    """
    import torch

    if params.encoder == "sovits5":
        from svc_core.speaker_sovits5 import sovits5_embedding

        assert params.encoder_model is not None  # checked by SpeakerParams
        return sovits5_embedding(audio, params.encoder_model, sr, device=params.device)
    wav = prepare_audio(audio, sr, params)
    enc = voice_encoder(params.device)
    with torch.inference_mode():
        emb = enc.embed_utterance(wav, rate=params.rate, min_coverage=params.min_coverage)
    emb = np.asarray(emb, dtype=np.float32)
    if not np.all(np.isfinite(emb)):
        raise BadAudioError("The speaker encoder produced an invalid embedding for this audio.")
    return emb


def speaker_embeddings(
    slices: Sequence[np.ndarray],
    sr: int,
    params: SpeakerParams = SpeakerParams(),
    *,
    skip_unusable: bool = True,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Embeddings of many slices of one singer.

    Args:
        slices: audio arrays (``[T]`` or ``[C, T]``) at ``sr``.
        sr: their sample rate.
        params: options.
        skip_unusable: skip silent/too short slices (else their error propagates).
        progress: ``progress("speaker", fraction)``.
        should_stop: cancellation hook.

    Returns:
        ``(embeddings [K, 256], kept)`` where ``kept`` lists the indices of the slices used.

    Raises:
        BadAudioError: no slice was usable (or one was and ``skip_unusable`` is False).
    """
    embs: list[np.ndarray] = []
    kept: list[int] = []
    for i, audio in enumerate(slices):
        check_stop(should_stop)
        try:
            embs.append(speaker_embedding(audio, sr, params))
            kept.append(i)
        except BadAudioError:
            if not skip_unusable:
                raise
        if progress is not None:
            progress("speaker", (i + 1) / max(len(slices), 1))
    if not embs:
        raise BadAudioError(
            "None of the slices has enough voice for a speaker embedding "
            f"(at least {params.min_voiced_s:g} s of non-silent audio each)."
        )
    return np.stack(embs).astype(np.float32), kept


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise BadInputError(f"The {what} is zero or invalid and cannot be normalised.")
    return (v / norm).astype(np.float32)


def _check_vec(v: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float32)
    if arr.shape != (SPK_DIM,):
        raise BadInputError(f"A {what} must have shape ({SPK_DIM},); got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise BadInputError(f"The {what} contains NaN or infinity.")
    return arr


def centroid(embeddings: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """The singer's embedding: L2-normalised mean of slice embeddings ``[K, 256]`` → ``[256]``."""
    arr = np.asarray(embeddings, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != SPK_DIM:
        raise BadInputError(
            f"centroid() needs a non-empty [K, {SPK_DIM}] array of embeddings; got {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise BadInputError("An embedding contains NaN or infinity.")
    return _unit(arr.mean(axis=0), "mean speaker embedding")


def singer_vector(
    embeddings: np.ndarray | Sequence[np.ndarray], params: SpeakerParams = SpeakerParams()
) -> np.ndarray:
    """The voice's speaker vector from its slices' embeddings: GE2E's normalised centroid,
    or, for 5.0's encoder, the plain mean 5.0 computes (``preprocess_speaker_ave.py``)."""
    if params.encoder == "sovits5":
        from svc_core.speaker_sovits5 import plain_mean

        return plain_mean(embeddings)
    return centroid(embeddings)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (``[256]`` each), in [-1, 1]."""
    va, vb = _check_vec(a, "speaker embedding"), _check_vec(b, "speaker embedding")
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    if na < 1e-12 or nb < 1e-12:
        raise BadInputError("Cosine similarity of a zero embedding is undefined.")
    return float(np.dot(va, vb) / (na * nb))


def mix_speakers(a: np.ndarray, b: np.ndarray, weight: float, normalise: bool = True) -> np.ndarray:
    """Blend two voices: ``normalise((1 - weight) * a + weight * b)``, ``weight`` in [0, 1].

    ``weight=0`` gives ``a`` (normalised), ``1`` gives ``b``. ``normalise=False`` (5.0's
    speaker vectors, which are plain means and not unit-norm): the weighted mean as it is.
    """
    if not 0.0 <= weight <= 1.0:
        raise BadInputError(f"The mix weight must be between 0 and 1; got {weight}.")
    if not normalise:
        va, vb = _check_vec(a, "speaker embedding"), _check_vec(b, "speaker embedding")
        return ((1.0 - weight) * va + weight * vb).astype(np.float32)
    va = _unit(_check_vec(a, "speaker embedding"), "speaker embedding")
    vb = _unit(_check_vec(b, "speaker embedding"), "speaker embedding")
    return _unit((1.0 - weight) * va + weight * vb, "mixed speaker embedding")


def save_spk(path: str | os.PathLike[str], emb: np.ndarray) -> Path:
    """Write ``emb`` as a float32 ``[256]`` ``.npy`` (temp file + rename, so never half-written)."""
    arr = _check_vec(emb, "speaker embedding")
    p = Path(path)
    with atomic_write(p) as fh:
        np.save(fh, arr, allow_pickle=False)
    return p


def load_spk(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.spk.npy`` speaker embedding (ours or so-vits-svc 5.0's).

    Returns:
        float32 ``[256]`` (not re-normalised: 5.0's averages are not unit-norm).

    Raises:
        BadInputError: the file does not exist.
        IncompatibleError: not a ``.npy`` array, wrong shape or dtype, NaN/inf or all zeros.
    """
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"The speaker embedding file {p} does not exist.")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IncompatibleError(f"{p} is not a speaker embedding (.npy array) file.") from exc
    if not isinstance(arr, np.ndarray):
        raise IncompatibleError(f"{p} is not a single speaker embedding array.")
    if arr.dtype.kind != "f":
        raise IncompatibleError(
            f"{p}: a speaker embedding must be floating point, not {arr.dtype}."
        )
    if arr.shape != (SPK_DIM,):
        raise IncompatibleError(
            f"{p}: a speaker embedding must have shape ({SPK_DIM},); this one has {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise IncompatibleError(f"{p}: the speaker embedding contains NaN or infinity.")
    if not np.any(arr):
        raise IncompatibleError(f"{p}: the speaker embedding is all zeros.")
    return arr.astype(np.float32)
