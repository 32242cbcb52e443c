"""Conversion speed: real-time factor of the model and of the whole convert_vocals path.

Builds a generator of each config with random weights (speed does not depend on the values),
then converts a synthetic sung melody:

- ``synth``: :meth:`VoiceModel.synthesize` alone on random content features of the config's
  real widths (the model's share of conversion time);
- ``full``: :func:`svc_core.convert.engine.convert_vocals` end to end (F0 with the given method,
  content encoders from tiny official-format checkpoints, chunking, gating, 44.1 kHz output).
  With real encoders add their time from bench/content.md (whisper large-v2 RTF ~1.1 and
  HuBERT-soft ~0.4 on this CPU).

    .venv/bin/python bench/convert_bench.py --seconds 20 --threads 2
    .venv/bin/python bench/convert_bench.py --device cuda --configs base --seconds 60
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from svc_core.content.extract import ContentParams  # noqa: E402
from svc_core.convert.engine import ConvertParams, convert_vocals  # noqa: E402
from svc_core.f0.base import F0Params  # noqa: E402
from svc_core.model.builders import build_generator  # noqa: E402
from svc_core.model.config import load_config  # noqa: E402
from svc_core.model.inference import VoiceModel  # noqa: E402
from tests import synth  # noqa: E402
from tests.tiny_assets import install_tiny_assets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["tiny", "base"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--f0", default="dio")
    ap.add_argument("--repeats", type=int, default=3, help="best of N")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sr = 44100
    _, vocals, _ = synth.sung_song(args.seconds, sr=sr, base_f0=220.0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        install_tiny_assets(models)
        content = ContentParams(
            ppg_checkpoint=str(models / "tiny.pt"),
            vec_checkpoint=str(models / "hubert-soft-0d54a1f4.pt"),
            device=args.device,
        )
        for name in args.configs:
            cfg = load_config(name)
            rng = np.random.default_rng(0)
            spk = rng.standard_normal(256).astype(np.float32)
            spk /= np.linalg.norm(spk)
            # synthesis alone at the config's real content widths
            model = VoiceModel(cfg, build_generator(cfg).state_dict(), spk, device=args.device)
            n_frames = model.n_frames_for(args.seconds)
            n_c = int(np.ceil(args.seconds * 50))
            ppg = rng.standard_normal((n_c, cfg.model.ppg_dim)).astype(np.float32)
            vec = rng.standard_normal((n_c, cfg.model.vec_dim)).astype(np.float32)
            f0 = np.full(n_frames, 220.0, np.float32)
            model.synthesize(ppg[:50], vec[:50], f0[: int(model.frame_rate)], n_frames=None)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                model.synthesize(ppg, vec, f0, n_frames=n_frames)
                times.append(time.perf_counter() - t0)
            synth_s = min(times)
            # the whole conversion path, with tiny encoders (widths 16/16)
            small = cfg.with_content_dims(16, 16)
            model2 = VoiceModel(small, build_generator(small).state_dict(), spk, device=args.device)
            params = ConvertParams(f0=F0Params(method=args.f0, device=args.device), content=content)
            convert_vocals(vocals[:, : sr * 2], sr, model2, params)  # warm-up, model loads
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                res = convert_vocals(vocals, sr, model2, params)
                times.append(time.perf_counter() - t0)
            full_s = min(times)
            row = {
                "config": name,
                "seconds": args.seconds,
                "device": args.device,
                "threads": args.threads,
                "synth_s": round(synth_s, 3),
                "synth_rtf": round(synth_s / args.seconds, 4),
                "full_s": round(full_s, 3),
                "full_rtf": round(full_s / args.seconds, 4),
                "f0": args.f0,
                "out_len_ok": len(res.audio_44k) == int(args.seconds * 44100),
            }
            print(json.dumps(row))
            rows.append(row)
    print(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "torch": torch.__version__}
        )
    )


if __name__ == "__main__":
    main()
