"""Training datasets in the preprocess stage's format, built from tones, for trainer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from svc_core.train.dataset import DatasetManifest, SliceEntry, write_manifest

SR = 16000  # the tiny config's rate
PPG_DIM, VEC_DIM = 32, 16


def make_dataset(
    root: Path,
    n_train: int = 3,
    n_valid: int = 1,
    seconds: tuple[float, ...] = (0.5, 0.35, 0.6, 0.45),
    f0s: tuple[float, ...] = (220.0, 330.0, 262.0, 196.0),
    seed: int = 0,
    per_slice_spk: bool = False,
) -> Path:
    """A dataset in the preprocess stage's format: harmonic tones with a -40 dB noise floor
    (real recordings have one; a perfectly clean tone makes log-mel losses meaningless),
    their exact F0 at 100 frames/s, random PPG/vec at 50 frames/s, a speaker embedding."""
    root = Path(root)
    (root / "slices").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    spk = rng.standard_normal(256).astype(np.float32)
    np.save(root / "speaker.npy", spk)
    entries = []
    for i in range(n_train + n_valid):
        f0, sec = f0s[i % len(f0s)], seconds[i % len(seconds)]
        n = int(sec * SR)
        t = np.arange(n) / SR
        y = sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3))
        y = (y + 0.01 * rng.standard_normal(n)).astype(np.float32)
        sid = f"s{i}"
        sf.write(root / f"slices/{sid}.wav", y, SR, subtype="FLOAT")
        np.save(root / f"slices/{sid}.f0.npy", np.full(int(sec * 100) + 1, f0, np.float32))
        nc = int(sec * 50) + 1
        ppg = rng.standard_normal((nc, PPG_DIM)).astype(np.float16)
        np.save(root / f"slices/{sid}.ppg.npy", ppg)
        np.save(root / f"slices/{sid}.vec.npy", rng.standard_normal((nc, VEC_DIM)))
        spk_rel = None
        if per_slice_spk:
            spk_rel = f"slices/{sid}.spk.npy"
            np.save(root / spk_rel, spk + 0.01 * rng.standard_normal(256).astype(np.float32))
        entries.append(
            SliceEntry(
                id=sid,
                split="train" if i < n_train else "valid",
                wav=f"slices/{sid}.wav",
                f0=f"slices/{sid}.f0.npy",
                ppg=f"slices/{sid}.ppg.npy",
                vec=f"slices/{sid}.vec.npy",
                spk=spk_rel,
                seconds=sec,
            )
        )
    manifest = DatasetManifest(
        sample_rate=SR,
        f0_rate=100.0,
        content_rate=50.0,
        ppg_dim=PPG_DIM,
        vec_dim=VEC_DIM,
        slices=tuple(entries),
        speaker="speaker.npy",
    )
    write_manifest(root, manifest)
    return root


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
