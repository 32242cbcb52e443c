"""Separation speed: the tiny test model path and a UVR-MDX-NET-Voc_FT-sized network.

Runs ``svc_core.separation.separate`` (the real audio-separator path, offline) on synthetic
audio. The "voc-ft-sized" model is a random-weight MDX-Net-shaped ONNX with Voc_FT's STFT
parameters (n_fft 7680, dim_f 3072, dim_t 256, hop 1024): its compute is of the real model's
order, its output is meaningless. Prints one line per case and a markdown table.

    .venv/bin/python bench/separation_bench.py [--seconds 10] [--threads 2] [--skip-sized]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

SR = 44100


def _song(path: Path, seconds: float) -> Path:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    rng = np.random.default_rng(0)
    voice = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    band = 0.05 * rng.standard_normal(n)
    mix = np.stack([voice + band, voice + 0.8 * band]).T.astype(np.float32)
    sf.write(path, mix, SR, subtype="PCM_16")
    return path


def _time(fn, repeats: int) -> tuple[float, float]:
    """(first call, best of the following calls) in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-sized", action="store_true")
    ap.add_argument("--width", type=int, default=32, help="channels of the sized U-Net's top level")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from tiny_models import build_sized_mdx_onnx, install_tiny_mdx, register_mdx_model

    from svc_core.separation import SeparationParams, separate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        song = _song(root / "song.wav", args.seconds)
        install_tiny_mdx(models, "tiny_vocals.onnx")

        def run(params: SeparationParams, tag: str) -> None:
            out = root / f"out-{tag}"
            first, warm = _time(lambda: separate(song, out, params, models), args.repeats)
            rows.append((tag, first, warm))
            print(
                f"{tag}: first {first:.2f} s, warm {warm:.2f} s for {args.seconds:g} s of audio "
                f"({warm / args.seconds:.2f}x real time)",
                flush=True,
            )

        run(SeparationParams(model="tiny_vocals.onnx"), "tiny mask MDX (test model)")
        if not args.skip_sized:
            t0 = time.perf_counter()
            path = build_sized_mdx_onnx(models / "sized_voc_ft.onnx", width=args.width)
            register_mdx_model(
                models, path.name, dim_f=3072, dim_t_set=8, n_fft=7680, compensate=1.021
            )
            size_mb = path.stat().st_size / 1e6
            print(f"built {path.name}: {size_mb:.1f} MB in {time.perf_counter() - t0:.1f} s")
            run(SeparationParams(model=path.name), f"Voc_FT-sized ({size_mb:.0f} MB), overlap 0.25")
    print()
    print(f"| case | first call (s) | warm (s) | warm / audio ({args.seconds:g} s) |")
    print("|---|---|---|---|")
    for tag, first, warm in rows:
        print(f"| {tag} | {first:.2f} | {warm:.2f} | {warm / args.seconds:.2f}x |")


if __name__ == "__main__":
    main()
