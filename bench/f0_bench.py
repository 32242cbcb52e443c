"""F0 methods: speed (real-time factor on 10 s) and accuracy on a synthetic set with known F0.

Run: .venv/bin/python bench/f0_bench.py [--methods crepe-tiny,harvest,...] [--threads 2]

Synthetic set (44.1 kHz, ground truth per 10 ms frame): harmonic tones with 5.5 Hz / ±80 cent
vibrato at 98, 220, 440 and 784 Hz (2 s each); exponential glides 100→800 Hz and 900→150 Hz
(3 s each, 3 harmonics); a phrase with silences before and after (voicing false alarms).
Metrics over reference-voiced frames: raw pitch accuracy within 50 cents (RPA), octave
errors, voicing recall; false alarms over reference-unvoiced frames.

``--vocals``: the bench vocals instead — sung speech with known F0, as MDB-stem-synth
builds its ground truth: espeak-ng sentences in four voices (bass to soprano, formants
warped per singer), analysed with WORLD and resynthesised on a melody with vibrato in each
singer's register (the soprano's up to 1.4 kHz), so consonants, breathy onsets and formant
motion are real while the F0 of every voiced frame is exactly known (frames WORLD renders
as noise or near-silence, at the edges of the speech's voiced runs, are left out of the
scores). Each clip also comes
with an accompaniment residue 15 dB under the voice (what separation leaves behind). The F0
range is widened to 50-1500 Hz for these so the soprano's top notes count.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svc_core.f0 import F0Params, extract_f0, f0_accuracy, n_frames  # noqa: E402
from svc_core.f0.base import frame_rms_db  # noqa: E402
from tests.common import synth  # noqa: E402
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


VOCAL_TEXT = [
    "She sells sea shells by the sea shore every summer morning.",
    "Bright stars are shining over the quiet sleeping village tonight.",
]
VOCAL_SINGERS = {
    # espeak voice, lowest note of the melody (Hz), formant warp
    "bass": ("en-gb+m3", 98.0, 0.9),
    "tenor": ("en-us+m1", 196.0, 1.0),
    "alto": ("en-us+f3", 349.0, 1.1),
    "soprano": ("en-us+f4", 784.0, 1.15),  # the melody climbs to 1.4 kHz
}
MELODY = np.array([0, 2, 4, 5, 7, 9, 10, 7, 4, 0])  # semitones above the lowest note


def sung_vocal(text: str, voice: str, low: float, warp: float, path: Path):
    """espeak speech → WORLD → a melody (with 5.5 Hz, ±30 cent vibrato) in the register,
    formants warped. Returns ``(audio [T] at 44.1 kHz, reference F0 per 10-ms frame)``."""
    import librosa
    import pyworld

    synth.espeak_speech(text, path, pitch=50, speed=120, voice=voice)
    y, _ = librosa.load(path, sr=SR)
    x = y.astype(np.float64)
    f0, t = pyworld.harvest(x, SR, frame_period=HOP * 1000)
    sp = pyworld.cheaptrick(x, f0, t, SR)
    ap = pyworld.d4c(x, f0, t, SR)
    bins = np.arange(sp.shape[1])
    sp = np.stack([np.interp(bins / warp, bins, row) for row in sp])
    notes = low * 2.0 ** (MELODY[(np.arange(len(f0)) // 35) % len(MELODY)] / 12)
    melody = notes * 2.0 ** (30 / 1200 * np.sin(2 * np.pi * 5.5 * t))
    sung_f0 = np.where(f0 > 0, melody, 0.0)
    out = pyworld.synthesize(sung_f0, sp, ap, SR, frame_period=HOP * 1000)
    out = (0.3 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)
    # frames Harvest called voiced that WORLD renders as noise (D4C found them aperiodic
    # below 3 kHz) or as near-silence (espeak's digital silence under Harvest's voicing
    # edges) are neither voiced nor unvoiced for certain: left out of the scores (NaN)
    n = n_frames(len(out), SR, HOP)
    sung_f0 = np.pad(sung_f0, (0, max(0, n - len(sung_f0))))[:n]
    low_ap = ap[:, np.linspace(0, SR / 2, ap.shape[1]) < 3000].mean(axis=1)
    noisy = np.pad(low_ap >= 0.5, (0, max(0, n - len(low_ap))))[:n]
    quiet = frame_rms_db(out, SR, n, HOP) < -50.0
    ref = np.where((sung_f0 > 0) & (noisy | quiet), np.nan, sung_f0)
    return out, ref


def vocal_set():
    import tempfile

    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (voice, low, warp) in VOCAL_SINGERS.items():
            for i, text in enumerate(VOCAL_TEXT):
                audio, ref = sung_vocal(text, voice, low, warp, Path(tmp) / f"{name}{i}.wav")
                cases[f"{name} {i + 1}"] = (audio, ref)
                _, _, acc = synth.sung_song(len(audio) / SR + 0.1, sr=SR, seed=i)
                bed = acc.mean(axis=0)[: len(audio)]
                gain = np.sqrt(np.mean(audio**2) / (np.mean(bed**2) + 1e-12)) * 10 ** (-15 / 20)
                cases[f"{name} {i + 1} + residue"] = (audio + gain * bed, ref)
    return cases


def scored(est: np.ndarray, ref: np.ndarray):
    """``f0_accuracy`` over the frames whose reference is known (not NaN)."""
    n = min(len(est), len(ref))
    keep = np.isfinite(ref[:n])
    return f0_accuracy(est[:n][keep], ref[:n][keep])


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="crepe-full,crepe-tiny,harvest,dio,praat")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocals", action="store_true", help="the bench vocals (see above)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    melody = ten_second_melody()
    cases = vocal_set() if args.vocals else synthetic_set()
    f0_max = 1500.0 if args.vocals else F0Params().f0_max
    seconds = sum(len(a) for a, _ in cases.values()) / SR
    print(f"torch threads: {args.threads}; CPU only; {len(cases)} clips, {seconds:.0f} s\n")
    print(
        "| method | load + first call (s) | 10 s audio (s) | RTF | RPA 50c | octave err | "
        "voicing recall | false alarm | mean abs cents |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        params = F0Params(method=method, device="cpu", f0_max=f0_max)
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
        acc = scored(np.concatenate(ests), np.concatenate(refs))
        print(
            f"| {method} | {first:.2f} | {took:.2f} | {took / 10:.3f} | "
            f"{100 * acc.raw_pitch_accuracy:.1f} % | {100 * acc.octave_errors:.2f} % | "
            f"{100 * acc.voicing_recall:.1f} % | {100 * acc.voicing_false_alarm:.1f} % | "
            f"{acc.mean_abs_cents:.1f} |",
            flush=True,
        )
        per_case = ", ".join(
            f"{name}: {100 * scored(e, r).raw_pitch_accuracy:.0f} %"
            for name, e, r in zip(cases, ests, refs, strict=True)
        )
        print(f"<!-- {method} per case RPA: {per_case} -->", flush=True)
        if args.vocals:  # per singer, clean and with the residue together
            for singer in VOCAL_SINGERS:
                keys = [k for k in cases if k.startswith(singer)]
                e = np.concatenate([ests[list(cases).index(k)] for k in keys])
                r = np.concatenate([refs[list(cases).index(k)] for k in keys])
                a = scored(e, r)
                print(
                    f"<!-- {method} {singer}: RPA {100 * a.raw_pitch_accuracy:.1f} %, octave "
                    f"{100 * a.octave_errors:.2f} %, recall {100 * a.voicing_recall:.1f} % -->",
                    flush=True,
                )


if __name__ == "__main__":
    main()
