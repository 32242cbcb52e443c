"""Retrieval index cost: build time, file size and search time by amount of training audio.

Run: .venv/bin/python bench/index_bench.py [--minutes 10,30,60,120] [--threads 2]

Features of the real widths (whisper large-v2 PPG 1280-d, HuBERT-soft vec 256-d) at the
content rate (50 frames/s, what datasets store), drawn as a mixture of 400 Gaussian
clusters (phone-like classes) in float32. The build is what training's end and the index
job run (``build_voice_index`` + ``save_voice_index``: IVF-Flat sized to the data, k-means
to 10,000 centroids above 200,000 vectors as RVC); the search is one song's 10 s (500
frames) through ``retrieve`` at ratio 0.75, PPG and vec both. Speed depends on the sizes,
not on what the features mean, so random features measure it faithfully; what retrieval
does to real features is bench/retrieval_bench.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svc_core.preprocess import CONTENT_RATE  # noqa: E402
from svc_core.retrieval import (  # noqa: E402
    build_voice_index,
    load_voice_index,
    retrieve,
    save_voice_index,
)

DIMS = {"ppg": 1280, "vec": 256}


def clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((400, dim)).astype(np.float32)
    x = centres[rng.integers(0, 400, n)]
    x += 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return x


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", default="10,30,60,120")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"faiss {faiss.__version__}, {args.threads} threads\n")
    head = (
        "| training audio | vectors | build + save (s) | file (MB) | load (s) | search 10 s (ms) |"
    )
    print(head)
    print("|---|---:|---:|---:|---:|---:|")
    for minutes in (float(m) for m in args.minutes.split(",")):
        n = int(minutes * 60 * CONTENT_RATE)
        feats = {k: clustered(n, d, rng) for k, d in DIMS.items()}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "voice.svcindex"
            t0 = time.perf_counter()
            index = build_voice_index(feats)
            save_voice_index(index, path)
            build = time.perf_counter() - t0
            size = path.stat().st_size / 1e6
            t0 = time.perf_counter()
            loaded = load_voice_index(path)
            load = time.perf_counter() - t0
        query = {k: clustered(500, d, rng) for k, d in DIMS.items()}
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for k, q in query.items():
                retrieve(q, loaded.indexes[k], 0.75)
            best = min(best, time.perf_counter() - t0)
        indexed = loaded.info["features"]["ppg"]["indexed"]
        print(
            f"| {minutes:g} min | {n:,} → {indexed:,} | {build:.1f} | {size:.0f} | {load:.2f} | "
            f"{1000 * best:.0f} |",
            flush=True,
        )
        del feats, index, loaded


if __name__ == "__main__":
    main()
