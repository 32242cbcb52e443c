"""so-vits-svc 5.0's own speaker encoder: the LSTM d-vector of Mozilla/Coqui TTS.

so-vits-svc 5.0 computes each singer's ``speaker0.spk.npy`` with the speaker encoder that
@mueller91 trained for Mozilla TTS (VoxCeleb 1+2, LibriSpeech/LibriTTS, Common Voice), shipped as
``best_model.pth.tar`` = ``{"model": state_dict, ...}``: three LSTM layers of 768 units, each
followed by a bias-free linear projection to 256, on 80-band log-mel frames at 16 kHz. This
module is our implementation of that encoder and its front end; its numbers equal 5.0's
(``tests/data/sovits5/speaker``, 1e-4 max abs).

Per file (5.0's ``prepare/preprocess_speaker.py``):

1. decode, average the channels, resample to 16 kHz (soxr HQ, as ``librosa.load`` does);
2. drop 10 ms at each end, trim leading/trailing silence (60 dB below the peak, 1024/256
   frames), peak-normalise to 0.95;
3. pre-emphasis 0.98, STFT 1024/256 Hann (centred, reflect padding), magnitude, 80 mel bands
   0-8000 Hz, ``20·log10(max(1e-5, x)) − 20 dB``, then ``((S + 100) / 100) · 8 − 4`` clipped
   to ±4 → ``[frames, 80]``;
4. 10 windows of 250 frames (all frames when fewer) at evenly spaced offsets, one batch; each
   window's last projected LSTM output, L2-normalised; the mean of the 10 → ``[256]``.

A singer (5.0's ``prepare/preprocess_speaker_ave.py``): the plain mean of the per-file vectors,
*not* re-normalised (so its norm is below 1), which is what 5.0's models were trained with.

Weights are read with ``torch.load(weights_only=True)`` and loaded ``strict=True``; a file with
other keys or shapes raises :class:`~svc_core.errors.IncompatibleError` naming them. The loaded
encoder is cached per process (path, modification time, size, device).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from svc_core.errors import BadAudioError, BadInputError, IncompatibleError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import ModelCache, resolve_device

# --- the numbers of 5.0's speaker_pretrain/config.json -------------------------------------
SR = 16000
N_FFT = 1024
HOP = 256
WIN = 1024
N_MELS = 80
FMIN = 0.0
FMAX = 8000.0
PREEMPHASIS = 0.98
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_NORM = 4.0
TRIM_DB = 60.0
EDGE_S = 0.01  # dropped at each end before trimming
PEAK = 0.95

LSTM_DIM = 768
PROJ_DIM = 256
NUM_LAYERS = 3
WINDOW_FRAMES = 250
NUM_WINDOWS = 10

SILENCE_DBFS = -70.0  # RMS below this: silent (the same threshold as svc_core.speaker)
MIN_SAMPLES = N_FFT  # after trimming: at least one full STFT window (64 ms)

# --- the encoder --------------------------------------------------------------------------


class _ProjectedLSTM(nn.Module):
    """One layer: an LSTM whose every output is projected by a bias-free linear map.

    Keeps Coqui's attribute names (``lstm``, ``linear``) so their files load ``strict=True``.
    """

    def __init__(self, input_dim: int, lstm_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, lstm_dim, batch_first=True)
        self.linear = nn.Linear(lstm_dim, proj_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, input_dim]`` → ``[B, T, proj_dim]``."""
        out, _ = self.lstm(x)
        return self.linear(out)


class Sovits5SpeakerEncoder(nn.Module):
    """The LSTM d-vector encoder (3 × LSTM 768 → 256 by default).

    State-dict keys: ``layers.{i}.lstm.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}``
    and ``layers.{i}.linear.weight``.
    """

    def __init__(
        self,
        input_dim: int = N_MELS,
        proj_dim: int = PROJ_DIM,
        lstm_dim: int = LSTM_DIM,
        num_layers: int = NUM_LAYERS,
    ) -> None:
        super().__init__()
        dims = [input_dim] + [proj_dim] * (num_layers - 1)
        self.layers = nn.Sequential(*(_ProjectedLSTM(d, lstm_dim, proj_dim) for d in dims))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings of a batch of mel windows.

        Args:
            mel: ``[B, T, 80]`` normalised log-mel frames (see :func:`sovits5_mel`).

        Returns:
            ``[B, 256]``: the last frame's projected output of the top layer, L2-normalised.
        """
        out = self.layers(mel)
        return nn.functional.normalize(out[:, -1], p=2, dim=1)


@cache
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of 5.0's (full-size) encoder."""
    with torch.device("meta"):  # shapes only: no memory, no random init
        enc = Sovits5SpeakerEncoder()
    return {k: tuple(v.shape) for k, v in enc.state_dict().items()}


def _state_dict_of(obj: Any, name: str) -> dict[str, torch.Tensor]:
    """The weights inside a loaded file: ``{"model": state_dict}`` (5.0/Coqui) or a bare one."""
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) for k in sd):
        raise IncompatibleError(
            f"{name} is not a so-vits-svc 5.0 speaker encoder file: expected "
            '{"model": state_dict} (Coqui/Mozilla TTS best_model.pth.tar layout).'
        )
    return sd


def _check_state_dict(sd: dict[str, Any], name: str) -> None:
    """Raise IncompatibleError naming missing/unexpected keys and wrong shapes."""
    want = expected_shapes()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    problems = []

    def _names(keys: list[str]) -> str:
        shown = ", ".join(keys[:6])
        return shown + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    bad = []
    for k, shape in want.items():
        v = sd.get(k)
        if v is None:
            continue
        if not isinstance(v, torch.Tensor):
            bad.append(f"{k} is a {type(v).__name__}, not a tensor")
        elif tuple(v.shape) != shape:
            bad.append(f"{k} has shape {list(v.shape)}, expected {list(shape)}")
        elif not v.is_floating_point():
            bad.append(f"{k} has dtype {v.dtype}, expected floating point")
    if bad:
        problems.append("; ".join(bad[:6]) + (f" and {len(bad) - 6} more" if len(bad) > 6 else ""))
    if problems:
        raise IncompatibleError(
            f"{name} is not so-vits-svc 5.0's LSTM speaker encoder "
            f"(3 × LSTM {LSTM_DIM}, projection {PROJ_DIM}, {N_MELS} mels): " + "; ".join(problems)
        )


def encoder_from_state_dict(
    sd: dict[str, Any], name: str = "the state dict"
) -> Sovits5SpeakerEncoder:
    """Build the encoder from a state dict (checked first, then loaded ``strict=True``).

    Raises:
        IncompatibleError: keys or shapes differ from 5.0's encoder (the message names them).
    """
    _check_state_dict(sd, name)
    enc = Sovits5SpeakerEncoder()
    enc.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    enc.eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc


_CACHE: ModelCache[tuple[str, int, int, str], Sovits5SpeakerEncoder] = ModelCache()


def load_sovits5_speaker_encoder(
    path: str | os.PathLike[str], device: str = "cpu"
) -> Sovits5SpeakerEncoder:
    """Load ``best_model.pth.tar`` (5.0's ``speaker_pretrain/``), once per process and device.

    Args:
        path: the encoder file.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    Returns:
        The encoder in eval mode, without gradients, on ``device``.

    Raises:
        BadInputError: no such file, or an unusable device.
        IncompatibleError: not a torch file, or other keys/shapes than 5.0's encoder.
    """
    dev = resolve_device(device)
    p = Path(path).expanduser()
    if not p.is_file():
        raise BadInputError(f"The speaker encoder file {p} does not exist.")
    p = p.resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size, dev)

    def load() -> Sovits5SpeakerEncoder:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
            raise IncompatibleError(
                f"{p.name} could not be read as a so-vits-svc 5.0 speaker encoder file "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
            ) from exc
        return encoder_from_state_dict(_state_dict_of(obj, p.name), p.name).to(dev)

    enc = _CACHE.get_or_load(key, load)
    # A changed file (new mtime/size) replaces the old entry instead of piling up.
    _CACHE.discard(lambda k: k[0] == key[0] and k[3] == dev and k != key)
    return enc


# --- the front end ------------------------------------------------------------------------


@cache
def _mel_basis() -> np.ndarray:
    """librosa's Slaney mel filters ``[80, 513]`` float32 (computed once: exact)."""
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)


def _to_16k_mono(audio: str | os.PathLike[str] | np.ndarray, sr: int | None) -> np.ndarray:
    """Decode (a path) or take (an array ``[T]``/``[C, T]`` at ``sr``) → float32 ``[T]`` at 16 kHz.

    Same samples as ``librosa.load(path, sr=16000)``: soundfile's float32 decode, the channel
    mean, soxr HQ resampling.
    """
    import librosa

    if isinstance(audio, str | os.PathLike):
        from svc_core.audio.io import load_audio

        arr, sr = load_audio(audio)
    else:
        if sr is None:
            raise BadInputError("sovits5_mel() needs the sample rate of an audio array.")
        arr = np.asarray(audio, dtype=np.float32)
    if sr <= 0:
        raise BadAudioError(f"Invalid sample rate {sr}.")
    if arr.ndim not in (1, 2):
        raise BadAudioError(f"Audio must be [T] or [C, T]; got shape {arr.shape}.")
    mono = arr if arr.ndim == 1 else arr.mean(axis=0)
    if mono.size == 0:
        raise BadAudioError("The audio is empty: no speaker embedding can be computed.")
    if not np.all(np.isfinite(mono)):
        raise BadAudioError("The audio contains invalid samples (NaN or infinity).")
    if sr != SR:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def sovits5_prepare_wav(
    audio: str | os.PathLike[str] | np.ndarray, sr: int | None = None
) -> np.ndarray:
    """Steps 1-2: 16 kHz mono, 10 ms dropped at each end, silence trimmed, peak 0.95.

    Args:
        audio: a file path, or an array ``[T]`` / ``[C, T]``.
        sr: the array's sample rate (ignored for a path).

    Returns:
        float32 ``[T']`` at 16 kHz (5.0's ``trimmed_len`` samples).

    Raises:
        BadAudioError: unreadable, empty, non-finite, silent, or shorter than one STFT window
            (1024 samples) after trimming.
    """
    import librosa

    from svc_core.audio.dsp import rms_dbfs

    wav = _to_16k_mono(audio, sr)
    if rms_dbfs(wav) < SILENCE_DBFS:
        raise BadAudioError("The audio is silent: no speaker embedding can be computed.")
    edge = int(SR * EDGE_S)
    wav = wav[edge:-edge]
    if wav.size < MIN_SAMPLES:
        raise BadAudioError(_too_short(wav.size))
    wav, _ = librosa.effects.trim(wav, top_db=TRIM_DB, frame_length=WIN, hop_length=HOP)
    if wav.size < MIN_SAMPLES:
        raise BadAudioError(_too_short(wav.size))
    peak = float(np.max(np.abs(wav)))
    if peak <= 0.0:
        raise BadAudioError("The audio is silent: no speaker embedding can be computed.")
    return (wav / peak * PEAK).astype(np.float32)


def _too_short(n: int) -> str:
    return (
        f"Too little sound for a speaker embedding: {n / SR * 1000:.0f} ms left after trimming "
        f"silence, at least {MIN_SAMPLES / SR * 1000:.0f} ms needed."
    )


def mel_of_prepared(wav: np.ndarray) -> np.ndarray:
    """Step 3 on a prepared waveform ``[T']`` (16 kHz) → float32 ``[frames, 80]`` in [-4, 4]."""
    import librosa
    import scipy.signal

    # float64 from here on, as 5.0 (lfilter promotes), down to float32 at the end.
    emphasised = scipy.signal.lfilter([1.0, -PREEMPHASIS], [1.0], wav)
    spec = librosa.stft(
        y=emphasised,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=WIN,
        window="hann",
        center=True,
        pad_mode="reflect",
    )
    mel = np.dot(_mel_basis(), np.abs(spec))
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - REF_LEVEL_DB
    norm = (2.0 * MAX_NORM) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_NORM
    return np.clip(norm, -MAX_NORM, MAX_NORM).astype(np.float32).T.copy()


def sovits5_mel(audio: str | os.PathLike[str] | np.ndarray, sr: int | None = None) -> np.ndarray:
    """5.0's speaker-encoder input of one file or array.

    Args:
        audio: a file path, or an array ``[T]`` / ``[C, T]``.
        sr: the array's sample rate (ignored for a path).

    Returns:
        float32 ``[frames, 80]``, values in [-4, 4].

    Raises:
        BadAudioError: see :func:`sovits5_prepare_wav`.
    """
    return mel_of_prepared(sovits5_prepare_wav(audio, sr))


def embed_mel(encoder: Sovits5SpeakerEncoder, mel: np.ndarray) -> np.ndarray:
    """Step 4: the embedding of a mel ``[frames, 80]`` → float32 ``[256]`` (norm ≤ 1).

    Ten windows of 250 frames (all frames when fewer) at ``linspace(0, frames − 250, 10)``
    offsets run as one batch; the result is the mean of their unit-norm embeddings.
    """
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != N_MELS or mel.shape[0] == 0:
        raise BadInputError(
            f"A mel for the speaker encoder must be [frames, {N_MELS}]; got {mel.shape}."
        )
    frames = mel.shape[0]
    n = min(WINDOW_FRAMES, frames)
    offsets = [int(o) for o in np.linspace(0, frames - n, num=NUM_WINDOWS)]
    batch = np.stack([mel[o : o + n] for o in offsets])  # [10, n, 80]
    device = next(encoder.parameters()).device
    with torch.inference_mode():
        emb = encoder(torch.from_numpy(batch).to(device)).mean(dim=0)
    out = emb.cpu().numpy().astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise BadAudioError("The speaker encoder produced an invalid embedding for this audio.")
    return out


def _encoder(encoder: Sovits5SpeakerEncoder | str | os.PathLike[str], device: str):
    if isinstance(encoder, Sovits5SpeakerEncoder):
        return encoder
    return load_sovits5_speaker_encoder(encoder, device)


def sovits5_embedding(
    audio: str | os.PathLike[str] | np.ndarray,
    encoder: Sovits5SpeakerEncoder | str | os.PathLike[str],
    sr: int | None = None,
    *,
    device: str = "cpu",
) -> np.ndarray:
    """5.0's speaker vector of one file (its ``<file>.spk.npy``).

    Args:
        audio: a file path, or an array ``[T]`` / ``[C, T]``.
        encoder: a loaded encoder, or the path of ``best_model.pth.tar``.
        sr: the array's sample rate (ignored for a path).
        device: where a path's encoder is loaded.

    Returns:
        float32 ``[256]``: the mean of 10 unit-norm window embeddings (norm ≤ 1).

    Raises:
        BadAudioError: unreadable, silent or too short audio.
        IncompatibleError: the encoder file is not 5.0's.
    """
    enc = _encoder(encoder, device)
    return embed_mel(enc, sovits5_mel(audio, sr))


def sovits5_embeddings(
    items: Sequence[str | os.PathLike[str] | np.ndarray],
    encoder: Sovits5SpeakerEncoder | str | os.PathLike[str],
    sr: int | None = None,
    *,
    device: str = "cpu",
    skip_unusable: bool = False,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Per-file vectors of one singer.

    Args:
        items: file paths or arrays (arrays at ``sr``).
        encoder: a loaded encoder, or the path of ``best_model.pth.tar``.
        sr: the arrays' sample rate.
        device: where a path's encoder is loaded.
        skip_unusable: skip silent/too short/unreadable items (else their error propagates).
        progress: ``progress("speaker", fraction)``.
        should_stop: cancellation hook.

    Returns:
        ``(vectors [K, 256], kept)``; ``kept`` lists the indices of the items used.

    Raises:
        BadAudioError: no item was usable (or one was not and ``skip_unusable`` is False).
    """
    enc = _encoder(encoder, device)
    embs: list[np.ndarray] = []
    kept: list[int] = []
    for i, item in enumerate(items):
        check_stop(should_stop)
        try:
            embs.append(sovits5_embedding(item, enc, sr))
            kept.append(i)
        except BadAudioError:
            if not skip_unusable:
                raise
        if progress is not None:
            progress("speaker", (i + 1) / max(len(items), 1))
    if not embs:
        raise BadAudioError("None of the files has enough sound for a speaker embedding.")
    return np.stack(embs).astype(np.float32), kept


def plain_mean(vectors: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """5.0's singer vector: the mean of per-file vectors ``[K, 256]`` → ``[256]``, not
    re-normalised (``preprocess_speaker_ave.py``)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != PROJ_DIM:
        raise BadInputError(
            f"plain_mean() needs a non-empty [K, {PROJ_DIM}] array; got {arr.shape}."
        )
    return arr.mean(axis=0).astype(np.float32)


def sovits5_singer_vector(
    paths: Sequence[str | os.PathLike[str] | np.ndarray],
    encoder: Sovits5SpeakerEncoder | str | os.PathLike[str],
    sr: int | None = None,
    *,
    device: str = "cpu",
    skip_unusable: bool = False,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> np.ndarray:
    """5.0's ``<singer>.spk.npy``: the plain mean of the files' vectors.

    Args:
        paths: the singer's files (or arrays at ``sr``).
        encoder: a loaded encoder, or the path of ``best_model.pth.tar``.
        sr: the arrays' sample rate.
        device: where a path's encoder is loaded.
        skip_unusable: leave out silent/too short files instead of failing.
        progress: ``progress("speaker", fraction)``.
        should_stop: cancellation hook.

    Returns:
        float32 ``[256]`` (one file: exactly its own vector).

    Raises:
        BadAudioError: see :func:`sovits5_embeddings`.
    """
    vecs, _ = sovits5_embeddings(
        paths,
        encoder,
        sr,
        device=device,
        skip_unusable=skip_unusable,
        progress=progress,
        should_stop=should_stop,
    )
    return plain_mean(vecs)
