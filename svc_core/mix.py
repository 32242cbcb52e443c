"""Mixing: converted vocals over the source song's instrumental, ready to listen to.

Signal chain (all library DSP: pedalboard, pyloudnorm, soxr):

1. both inputs resampled to 44.1 kHz stereo; the vocals padded/trimmed to the
   instrumental's length (the conversion keeps the source's timing, so no alignment search);
2. the instrumental optionally pitch-shifted by the same interval as the vocals
   (pedalboard's offline Rubber Band ``time_stretch``), so a transposed cover stays in tune;
3. the vocals' integrated loudness matched to the original (source) vocals' loudness,
   then the user's vocal gain and an optional reverb (pedalboard ``Reverb``);
4. sum, then a look-ahead true-peak limiter (pedalboard ``BrickwallLimiter``) and a final
   safety gain measured on a 4× oversampled signal, so the true peak never exceeds the ceiling.

Re-mixing with other settings only needs the stored converted vocals and instrumental.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from svc_core.audio.dsp import gain_db, loudness_lufs, resample, to_channels
from svc_core.audio.io import load_audio
from svc_core.errors import BadInputError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.utils import atomic_path

MIX_SAMPLE_RATE = 44100

# name -> (soundfile format, subtype, file extension, MIME type)
OUTPUT_FORMATS: dict[str, tuple[str, str, str, str]] = {
    "wav16": ("WAV", "PCM_16", "wav", "audio/wav"),
    "wav24": ("WAV", "PCM_24", "wav", "audio/wav"),
    "flac": ("FLAC", "PCM_24", "flac", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "mp3", "audio/mpeg"),
}


@dataclass(frozen=True)
class MixParams:
    """User-facing mix settings (all optional)."""

    vocal_gain_db: float = 0.0
    match_loudness: bool = True  # vocals as loud as the original vocals were
    reverb_wet: float = 0.0  # 0 = no reverb; 0..1
    reverb_room_size: float = 0.35
    transpose_instrumental: float = 0.0  # semitones; the worker passes the vocal transpose
    ceiling_dbtp: float = -1.0  # true-peak ceiling of the mix
    output_format: str = "wav16"

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise BadInputError(
                f"unknown output format '{self.output_format}'; "
                f"choose one of {', '.join(OUTPUT_FORMATS)}"
            )
        if not 0.0 <= self.reverb_wet <= 1.0 or not 0.0 <= self.reverb_room_size <= 1.0:
            raise BadInputError("reverb settings must lie between 0 and 1")
        if not -24.0 <= self.vocal_gain_db <= 24.0:
            raise BadInputError("vocal gain must lie between -24 and +24 dB")
        if not -24.0 <= self.transpose_instrumental <= 24.0:
            raise BadInputError("the instrumental can be transposed by at most 24 semitones")
        if not -20.0 <= self.ceiling_dbtp <= 0.0:
            raise BadInputError("the true-peak ceiling must lie between -20 and 0 dBTP")


@dataclass(frozen=True)
class MixReport:
    duration_s: float
    sample_rate: int
    vocal_gain_applied_db: float
    vocals_lufs: float
    instrumental_lufs: float | None
    mix_lufs: float
    true_peak_dbtp: float
    limiter_gain_reduction_db: float

    def to_dict(self) -> dict:
        return asdict(self)


def true_peak_dbtp(audio: np.ndarray, sample_rate: int) -> float:
    """Peak of the 4× oversampled signal in dBTP (BS.1770-4 annex 2 style estimate)."""
    up = resample(audio, sample_rate, sample_rate * 4)
    peak = float(np.max(np.abs(up))) if up.size else 0.0
    return 20.0 * np.log10(max(peak, 1e-10))


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    if audio.shape[1] >= length:
        return audio[:, :length]
    return np.pad(audio, ((0, 0), (0, length - audio.shape[1])))


def _stereo_44k(audio: np.ndarray, sr: int) -> np.ndarray:
    return to_channels(resample(audio, sr, MIX_SAMPLE_RATE), 2)


def mix_arrays(
    vocals: np.ndarray,
    vocals_sr: int,
    instrumental: np.ndarray | None,
    instrumental_sr: int | None,
    params: MixParams = MixParams(),
    *,
    reference_vocals: np.ndarray | None = None,
    reference_sr: int | None = None,
) -> tuple[np.ndarray, MixReport]:
    """Mix ``[C, T]`` vocals over ``[C, T]`` instrumental → ``([2, T] float32 44.1 kHz, report)``.

    The output has the instrumental's length (the vocals' when there is no instrumental).
    ``reference_vocals`` are the source song's original vocals, whose loudness the converted
    vocals are matched to.
    """
    import pedalboard

    sr = MIX_SAMPLE_RATE
    voc = _stereo_44k(vocals, vocals_sr)
    inst = None
    if instrumental is not None:
        inst = _stereo_44k(instrumental, int(instrumental_sr or sr))
        voc = _fit_length(voc, inst.shape[1])
        if params.transpose_instrumental:
            # Offline Rubber Band (time_stretch with factor 1): exact pitch ratio. The
            # real-time PitchShift plugin measured 15 cents flat/sharp on pure tones.
            inst = pedalboard.time_stretch(
                inst,
                sr,
                stretch_factor=1.0,
                pitch_shift_in_semitones=float(params.transpose_instrumental),
                high_quality=True,
            )
            inst = _fit_length(inst, voc.shape[1])
    if voc.shape[1] == 0:
        raise BadInputError("there is nothing to mix: the vocals are empty")

    voc_lufs = loudness_lufs(voc, sr)
    gain = params.vocal_gain_db
    if params.match_loudness and reference_vocals is not None and voc_lufs > -70.0:
        ref_lufs = loudness_lufs(_stereo_44k(reference_vocals, int(reference_sr or sr)), sr)
        if ref_lufs > -70.0:
            gain += ref_lufs - voc_lufs
    voc = gain_db(voc, gain)
    if params.reverb_wet > 0:
        reverb = pedalboard.Reverb(
            room_size=params.reverb_room_size,
            wet_level=params.reverb_wet,
            dry_level=1.0 - 0.5 * params.reverb_wet,
            width=1.0,
        )
        voc = reverb(voc, sr, reset=True)
    mix = voc if inst is None else voc + inst
    before = true_peak_dbtp(mix, sr)
    # The limiter's ceiling sits 0.5 dB under the target; its true-peak sidechain catches
    # most inter-sample overs and the measured safety gain below catches the rest.
    limiter = pedalboard.BrickwallLimiter(
        ceiling_db=params.ceiling_dbtp - 0.5, release_ms=100.0, true_peak=True
    )
    mix = np.asarray(limiter(np.ascontiguousarray(mix, dtype=np.float32), sr), np.float32)
    mix = _fit_length(mix, voc.shape[1])
    peak = true_peak_dbtp(mix, sr)
    if peak > params.ceiling_dbtp:
        mix = gain_db(mix, params.ceiling_dbtp - peak - 0.01)
        peak = true_peak_dbtp(mix, sr)
    report = MixReport(
        duration_s=round(mix.shape[1] / sr, 4),
        sample_rate=sr,
        vocal_gain_applied_db=round(gain, 2),
        vocals_lufs=round(loudness_lufs(voc, sr), 2),
        instrumental_lufs=None if inst is None else round(loudness_lufs(inst, sr), 2),
        mix_lufs=round(loudness_lufs(mix, sr), 2),
        true_peak_dbtp=round(peak, 2),
        limiter_gain_reduction_db=round(max(0.0, before - peak), 2),
    )
    return mix.astype(np.float32), report


def export_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, fmt: str) -> Path:
    """Write ``[C, T]`` audio as ``fmt`` (a key of :data:`OUTPUT_FORMATS`), atomically."""
    if fmt not in OUTPUT_FORMATS:
        raise BadInputError(f"unknown output format '{fmt}'")
    container, subtype, ext, _mime = OUTPUT_FORMATS[fmt]
    path = Path(path)
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0).T
    with atomic_path(path, suffix=f".tmp.{ext}") as tmp:
        sf.write(str(tmp), data, int(sample_rate), format=container, subtype=subtype)
    return path


def mix_files(
    vocals: str | os.PathLike,
    instrumental: str | os.PathLike | None,
    out_path: str | os.PathLike,
    params: MixParams = MixParams(),
    *,
    reference_vocals: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> MixReport:
    """File version of :func:`mix_arrays`; writes ``out_path`` in ``params.output_format``."""
    report = progress or (lambda _s, _f: None)
    voc, voc_sr = load_audio(vocals)
    inst, inst_sr = (None, None) if instrumental is None else load_audio(instrumental)
    ref, ref_sr = (None, None) if reference_vocals is None else load_audio(reference_vocals)
    report("mix", 0.3)
    check_stop(should_stop)
    mix, rep = mix_arrays(
        voc, voc_sr, inst, inst_sr, params, reference_vocals=ref, reference_sr=ref_sr
    )
    report("mix", 0.8)
    check_stop(should_stop)
    export_audio(out_path, mix, MIX_SAMPLE_RATE, params.output_format)
    report("mix", 1.0)
    return rep
