"""Training speed and model size of the built-in configs.

Builds a synthetic dataset at each config's sample rate (harmonic tones, random content
features of the real dimensions), runs :func:`svc_core.train.trainer.train` for a few steps and
reports steps/s measured between the first and the last step event (start-up, evaluation
and saving excluded), plus parameter counts.

    .venv/bin/python bench/train_bench.py                      # tiny + base on this machine
    .venv/bin/python bench/train_bench.py --configs tiny --steps 50 --threads 1
    .venv/bin/python bench/train_bench.py --device cuda --configs base --steps 30 --batch 8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from svc_core.model import builders
from svc_core.model.config import load_config
from svc_core.train.dataset import DatasetManifest, SliceEntry, write_manifest
from svc_core.train.trainer import TrainParams, train


def make_dataset(root: Path, sr: int, ppg_dim: int, vec_dim: int, n: int, seconds: float):
    (root / "slices").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(root / "speaker.npy", rng.standard_normal(256).astype(np.float32))
    entries = []
    for i in range(n):
        f0 = 150.0 + 40 * i
        t = np.arange(int(seconds * sr)) / sr
        y = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3))
        y = (y + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
        sf.write(root / f"slices/{i}.wav", y, sr, subtype="FLOAT")
        np.save(root / f"slices/{i}.f0.npy", np.full(int(seconds * 100) + 1, f0, np.float32))
        nc = int(seconds * 50) + 1
        np.save(root / f"slices/{i}.ppg.npy", rng.standard_normal((nc, ppg_dim)).astype(np.float16))
        np.save(root / f"slices/{i}.vec.npy", rng.standard_normal((nc, vec_dim)).astype(np.float16))
        entries.append(
            SliceEntry(
                str(i),
                "train" if i < n - 1 else "valid",
                f"slices/{i}.wav",
                f"slices/{i}.f0.npy",
                f"slices/{i}.ppg.npy",
                f"slices/{i}.vec.npy",
            )
        )
    write_manifest(
        root,
        DatasetManifest(sr, 100.0, 50.0, ppg_dim, vec_dim, tuple(entries), speaker="speaker.npy"),
    )
    return root


def bench(name: str, steps: int, batch: int | None, device: str) -> dict:
    config = load_config(name)
    if batch:
        config = dataclasses.replace(
            config, train=dataclasses.replace(config.train, batch_size=batch)
        )
    g = builders.build_generator(config)
    d = builders.build_discriminator(config)
    counts = {
        "generator": builders.count_parameters(g),
        "discriminator": builders.count_parameters(d),
    }
    del g, d
    bs = config.train.batch_size
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_dataset(
            Path(tmp) / "ds",
            config.audio.sample_rate,
            config.model.ppg_dim,
            config.model.vec_dim,
            n=bs * 2 + 1,
            seconds=2.0,
        )

        def on_event(e):
            if e.kind == "step":
                times.append(time.perf_counter())

        t0 = time.perf_counter()
        train(
            ds,
            Path(tmp) / "run",
            config,
            TrainParams(
                max_steps=steps,
                log_interval=1,
                eval_interval=10**9,
                save_interval=10**9,
                device=device,
                num_workers=0,
            ),
            on_event=on_event,
        )
        total = time.perf_counter() - t0
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {
        "config": name,
        "batch": bs,
        "segment_s": config.audio.segment_size / config.audio.sample_rate,
        "steps": steps,
        "steps_per_s": rate,
        "s_per_step": 1 / rate,
        "total_s_incl_startup": total,
        **{f"params_{k}": v for k, v in counts.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["tiny", "base"])
    ap.add_argument("--steps", type=int, default=None, help="default: tiny 40, base 4")
    ap.add_argument("--batch", type=int, default=None, help="default: tiny 2 (config), base 2")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads {torch.get_num_threads()}, device {args.device}"
    )
    for name in args.configs:
        steps = args.steps or (40 if name == "tiny" else 4)
        batch = args.batch or (None if name == "tiny" else 2)
        print(json.dumps(bench(name, steps, batch, args.device)))


if __name__ == "__main__":
    main()
