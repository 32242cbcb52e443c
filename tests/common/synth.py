"""Synthetic test audio with known properties (F0, boundaries, loudness).

Every generator returns float32 arrays shaped ``[T]`` (mono) or ``[C, T]`` and is
deterministic for a given seed, so assertions can use the known ground truth.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np


def tone(
    f0: float,
    seconds: float,
    sr: int = 44100,
    amp: float = 0.3,
    harmonics: int = 1,
    vibrato_hz: float = 0.0,
    vibrato_cents: float = 0.0,
) -> np.ndarray:
    """A (harmonic) tone with optional sinusoidal vibrato. Returns ``[T]``."""
    t = np.arange(int(round(seconds * sr))) / sr
    f = f0 * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    y = y / np.max(np.abs(y)) * amp
    return y.astype(np.float32)


def tone_f0(
    f0: float, seconds: float, hop_s: float, vibrato_hz: float = 0.0, vibrato_cents: float = 0.0
) -> np.ndarray:
    """The ground-truth F0 of :func:`tone` sampled every ``hop_s`` seconds. Returns ``[N]``."""
    t = np.arange(int(seconds / hop_s) + 1) * hop_s
    return (f0 * 2.0 ** (vibrato_cents / 1200.0 * np.sin(2 * np.pi * vibrato_hz * t))).astype(
        np.float64
    )


def glide(f_start: float, f_end: float, seconds: float, sr: int = 44100, amp: float = 0.3):
    """An exponential pitch glide (chirp). Returns ``(audio [T], f0_at(t) callable)``."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    ratio = f_end / f_start
    f = f_start * ratio ** (t / seconds)
    y = amp * np.sin(2 * np.pi * np.cumsum(f) / sr)

    def f0_at(times: np.ndarray) -> np.ndarray:
        return f_start * ratio ** (np.clip(times, 0, seconds) / seconds)

    return y.astype(np.float32), f0_at


def noise(seconds: float, sr: int = 44100, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def silence(seconds: float, sr: int = 44100) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), dtype=np.float32)


def phrases(
    durations: list[float], gaps: list[float], sr: int = 44100, f0: float = 220.0, amp: float = 0.3
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tones separated by silences: ``[gap0, phrase0, gap1, phrase1, ..., gapN]``.

    ``gaps`` has ``len(durations) + 1`` entries. Returns the audio ``[T]`` and the
    (start, end) seconds of every phrase.
    """
    assert len(gaps) == len(durations) + 1
    parts, spans, t = [], [], 0.0
    for i, d in enumerate(durations):
        parts.append(silence(gaps[i], sr))
        t += gaps[i]
        parts.append(tone(f0 * (1 + 0.1 * i), d, sr, amp=amp, harmonics=3))
        spans.append((t, t + d))
        t += d
    parts.append(silence(gaps[-1], sr))
    return np.concatenate(parts), spans


def espeak_speech(
    text: str, path: Path, pitch: int = 50, speed: int = 150, voice: str | None = None
) -> Path | None:
    """Synthesize speech with espeak-ng into ``path`` (22.05 kHz WAV); None when not installed.

    ``voice``: an espeak-ng voice or variant (``en+Annie``: female); default: its own default.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    subprocess.run(
        [
            exe,
            *(["-v", voice] if voice else []),
            "-w",
            str(path),
            "-p",
            str(pitch),
            "-s",
            str(speed),
            text,
        ],
        check=True,
        capture_output=True,
    )
    return path


def write(path: Path, audio: np.ndarray, sr: int = 44100, subtype: str = "PCM_16") -> Path:
    """Write ``[T]`` or ``[C, T]`` audio with soundfile."""
    import soundfile as sf

    data = audio.T if audio.ndim == 2 else audio
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def encode_ffmpeg(src: Path, dst: Path, *extra: str) -> Path:
    """Encode ``src`` to ``dst`` (format from the extension) with the ffmpeg binary."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *extra, str(dst)],
        check=True,
    )
    return dst


def sung_song(
    seconds: float,
    sr: int = 44100,
    base_f0: float = 220.0,
    seed: int = 0,
    accompaniment: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A "song": a sung melody (harmonic notes with vibrato, breaths every ~3 s) over an
    accompaniment (a low chord and soft noise). Returns stereo ``(mix, vocals, accomp)``,
    each ``[2, T]``."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    vocals = np.zeros(n, np.float32)
    scale = [0, 2, 4, 5, 7, 9, 7, 4]
    t, note_s = 0.0, 0.45
    while t < seconds - 0.3:
        phrase_end = min(seconds - 0.3, t + 2.6)
        while t < phrase_end:
            f0 = base_f0 * 2 ** (scale[int(rng.integers(len(scale)))] / 12)
            y = tone(f0, note_s, sr, amp=0.25, harmonics=8, vibrato_hz=5.5, vibrato_cents=35)
            a = int(t * sr)
            fade = np.minimum(1.0, np.minimum(np.arange(len(y)), np.arange(len(y))[::-1]) / 400)
            vocals[a : a + len(y)] += (y * fade)[: n - a]
            t += note_s
        t += 0.4  # a breath
    acc = np.zeros(n, np.float32)
    if accompaniment:
        for f in (base_f0 / 2, base_f0 / 2 * 1.25, base_f0 / 2 * 1.5):
            acc += tone(f, seconds, sr, amp=0.06, harmonics=3)[:n]
        acc += noise(seconds, sr, amp=0.01, seed=seed + 1)[:n]
    voc2 = np.stack([vocals, vocals])
    acc2 = np.stack([acc * 0.9, acc])
    return (voc2 + acc2).astype(np.float32), voc2, acc2
