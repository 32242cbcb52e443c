"""Slicer speed on a 5-minute synthetic vocal (stereo, 44.1 kHz).

Run: .venv/bin/python bench/slicer_bench.py [--minutes 5] [--repeats 5]
The vocal alternates sung phrases (harmonic tones with vibrato, 0.5-8 s) with pauses
(0.1-2 s) that hold faint breath noise (-70 dBFS), like a separated vocal stem.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svc_core.audio.slicer import SliceParams, slice_audio, slice_file  # noqa: E402
from tests.common.synth import noise, tone, write  # noqa: E402

SR = 44100


def synthetic_vocal(minutes: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    target = int(minutes * 60 * SR)
    while total < target:
        gap = noise(float(rng.uniform(0.1, 2.0)), SR, amp=3e-4, seed=int(rng.integers(1 << 30)))
        sung = tone(
            float(rng.uniform(110, 700)),
            float(rng.uniform(0.5, 8.0)),
            SR,
            amp=float(rng.uniform(0.05, 0.5)),
            harmonics=4,
            vibrato_hz=5.5,
            vibrato_cents=60,
        )
        parts += [gap, sung]
        total += len(gap) + len(sung)
    mono = np.concatenate(parts)[:target]
    return np.stack([mono, 0.8 * mono])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    audio = synthetic_vocal(args.minutes)
    params = SliceParams()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        slices = slice_audio(audio, SR, params)
        times.append(time.perf_counter() - t0)
    lengths = [s.length / SR for s in slices]
    print(f"input: {args.minutes:g} min stereo 44.1 kHz; params: {params}")
    print(
        f"slice_audio: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms over {args.repeats} runs "
        f"(RTF {statistics.median(times) / (args.minutes * 60):.5f})"
    )
    print(
        f"{len(slices)} slices, {min(lengths):.1f}-{max(lengths):.1f} s, "
        f"{sum(lengths) / 60:.2f} min kept of {args.minutes:g}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = write(Path(tmp) / "vocal.wav", audio, SR, subtype="FLOAT")
        t0 = time.perf_counter()
        slice_file(src, Path(tmp) / "out", params)
        print(
            f"slice_file (decode + slice + write WAVs + manifest): {time.perf_counter() - t0:.2f} s"
        )


if __name__ == "__main__":
    main()
