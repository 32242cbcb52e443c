"""Audio files for API tests, made on the fly from tests/common/synth generators."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.common import synth


def song(
    path: Path,
    seconds: float = 3.0,
    sr: int = 44100,
    channels: int = 1,
    subtype: str = "PCM_16",
    f0: float = 220.0,
) -> Path:
    y = synth.tone(f0, seconds, sr, amp=0.3, harmonics=4, vibrato_hz=5, vibrato_cents=30)
    if channels > 1:
        y = np.stack([y * (0.8 + 0.1 * c) for c in range(channels)])
    return synth.write(path, y, sr, subtype)


def silent(path: Path, seconds: float = 3.0, sr: int = 44100) -> Path:
    return synth.write(path, synth.silence(seconds, sr), sr)
