"""F0 methods: speed (real-time factor on 10 s) and accuracy on a synthetic set with known F0.

Run: .venv/bin/python bench/f0_bench.py [--methods crepe-tiny,harvest,...] [--threads 2]

Synthetic set (44.1 kHz, ground truth per 10 ms frame): harmonic tones with 5.5 Hz / ±80 cent
vibrato at 98, 220, 440 and 784 Hz (2 s each); exponential glides 100→800 Hz and 900→150 Hz
(3 s each, 3 harmonics); a phrase with silences before and after (voicing false alarms).
Metrics over reference-voiced frames: raw pitch accuracy within 50 cents (RPA), octave
errors, voicing recall; false alarms over reference-unvoiced frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svc_core.f0 import F0Params, extract_f0, f0_accuracy, n_frames  # noqa: E402
from tests.common.synth import silence, tone, tone_f0  # noqa: E402

SR = 44100
HOP = 0.01


def harmonic_glide(f_start: float, f_end: float, seconds: float):
    t = np.arange(int(round(seconds * SR))) / SR
    f = f_start * (f_end / f_start) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f) / SR
    y = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    y = (0.3 * y / np.max(np.abs(y))).astype(np.float32)
    frames = np.arange(n_frames(len(y), SR, HOP)) * HOP
    return y, f_start * (f_end / f_start) ** (np.clip(frames, 0, seconds) / seconds)


def vibrato(f0: float, seconds: float = 2.0):
    y = tone(f0, seconds, SR, harmonics=4, vibrato_hz=5.5, vibrato_cents=80)
    ref = tone_f0(f0, seconds, HOP, vibrato_hz=5.5, vibrato_cents=80)
    return y, ref[: n_frames(len(y), SR, HOP)]


def phrase_with_silence():
    y, ref = vibrato(330.0, 2.0)
    pad = silence(1.0, SR)
    return np.concatenate([pad, y, pad]), np.concatenate([np.zeros(100), ref, np.zeros(100)])


def synthetic_set():
    cases = {f"vibrato {f:g} Hz": vibrato(f) for f in (98.0, 220.0, 440.0, 784.0)}
    cases["glide 100→800 Hz"] = harmonic_glide(100.0, 800.0, 3.0)
    cases["glide 900→150 Hz"] = harmonic_glide(900.0, 150.0, 3.0)
    cases["phrase + silences"] = phrase_with_silence()
    return cases


def ten_second_melody() -> np.ndarray:
    rng = np.random.default_rng(0)
    notes = [
        tone(float(f), 0.5, SR, harmonics=4, vibrato_hz=5, vibrato_cents=40)
        for f in 220 * 2 ** (rng.integers(-7, 12, 20) / 12)
    ]
    return np.concatenate(notes)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="crepe-full,crepe-tiny,harvest,dio,praat")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    melody = ten_second_melody()
    cases = synthetic_set()
    print(f"torch threads: {args.threads}; CPU only\n")
    print(
        "| method | load + first call (s) | 10 s audio (s) | RTF | RPA 50c | octave err | "
        "voicing recall | false alarm | mean abs cents |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        params = F0Params(method=method, device="cpu")
        t0 = time.perf_counter()
        extract_f0(melody[: SR // 2], SR, params)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        extract_f0(melody, SR, params)
        took = time.perf_counter() - t0
        ests, refs = [], []
        for audio, ref in cases.values():
            ests.append(extract_f0(audio, SR, params))
            refs.append(ref)
        acc = f0_accuracy(np.concatenate(ests), np.concatenate(refs))
        print(
            f"| {method} | {first:.2f} | {took:.2f} | {took / 10:.3f} | "
            f"{100 * acc.raw_pitch_accuracy:.1f} % | {100 * acc.octave_errors:.2f} % | "
            f"{100 * acc.voicing_recall:.1f} % | {100 * acc.voicing_false_alarm:.1f} % | "
            f"{acc.mean_abs_cents:.1f} |",
            flush=True,
        )
        per_case = ", ".join(
            f"{name}: {100 * f0_accuracy(e, r).raw_pitch_accuracy:.0f} %"
            for name, e, r in zip(cases, ests, refs, strict=True)
        )
        print(f"<!-- {method} per case RPA: {per_case} -->", flush=True)


if __name__ == "__main__":
    main()
