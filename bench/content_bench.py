"""Speed of the content encoders and the speaker embedding at real sizes (random weights).

Whisper encoders are written to a checkpoint in the official layout (fp16 tensors, encoder
weights only, as ``{"dims", "model_state_dict"}``) and run through the real loader and
``WhisperPPG.encode``; HuBERT-soft likewise with the official key layout at full size. Random
weights run at the same speed as trained ones. Resemblyzer uses its bundled weights.

Usage::

    .venv/bin/python bench/content_bench.py --sizes tiny,base,small --seconds 30 --threads 2
    .venv/bin/python bench/content_bench.py --sizes large-v2 --no-hubert --no-speaker
    PYTHONPATH=/path/with/ctranslate2 .venv/bin/python bench/content_bench.py --sizes "" \
        --no-hubert --no-speaker --ct2 /path/to/ct2-whisper-folder

RTF = processing time / audio duration (below 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svc_core.content import clear_model_cache, make_encoder  # noqa: E402
from svc_core.content.hubert import HubertSoftModel  # noqa: E402
from svc_core.content.whisper import WhisperAudioEncoder  # noqa: E402

# (n_mels, n_audio_state, n_audio_head, n_audio_layer) of OpenAI's published models
WHISPER_DIMS = {
    "tiny": (80, 384, 6, 4),
    "base": (80, 512, 8, 6),
    "small": (80, 768, 12, 12),
    "medium": (80, 1024, 16, 24),
    "large-v2": (80, 1280, 20, 32),
    "large-v3": (128, 1280, 20, 32),
}


def test_audio(seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * 180 * t + 2 * np.sin(2 * np.pi * 5 * t))
    return (tone + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_whisper(path: Path, size: str) -> None:
    n_mels, state, heads, layers = WHISPER_DIMS[size]
    enc = WhisperAudioEncoder(n_mels, 1500, state, heads, layers)
    sd = {f"encoder.{k}": v.half() for k, v in enc.state_dict().items()}
    dims = {
        "n_mels": n_mels,
        "n_audio_ctx": 1500,
        "n_audio_state": state,
        "n_audio_head": heads,
        "n_audio_layer": layers,
        "n_vocab": 51865,
        "n_text_ctx": 448,
        "n_text_state": state,
        "n_text_head": heads,
        "n_text_layer": layers,
    }
    torch.save({"dims": dims, "model_state_dict": sd}, path)


def write_hubert(path: Path) -> None:
    model = HubertSoftModel()
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,base,small")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--no-hubert", action="store_true")
    ap.add_argument("--no-speaker", action="store_true")
    ap.add_argument("--ct2", help="a CTranslate2 Whisper folder to time (needs ctranslate2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    audio = test_audio(args.seconds)
    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads={args.threads}, device={args.device}, precision={args.precision}, "
        f"audio={args.seconds:g} s"
    )
    print("| encoder | dim | load s | encode s | RTF | output |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in [s for s in args.sizes.split(",") if s]:
            path = Path(tmp) / f"{size}.pt"
            write_whisper(path, size)
            t0 = time.perf_counter()
            enc = make_encoder("whisper", path, device=args.device, precision=args.precision)
            load_s = time.perf_counter() - t0
            enc.encode(audio[:16000])  # warm-up
            enc_s, feats = timed(lambda enc=enc: enc.encode(audio), args.repeat)
            print(
                f"| whisper-{size} | {feats.shape[1]} | {load_s:.1f} | {enc_s:.2f} | "
                f"{enc_s / args.seconds:.3f} | {feats.shape[0]} frames |"
            )
            del enc
            clear_model_cache()
            path.unlink()
        if not args.no_hubert:
            path = Path(tmp) / "hubert-soft.pt"
            write_hubert(path)
            t0 = time.perf_counter()
            enc = make_encoder("hubert-soft", path, device=args.device, precision=args.precision)
            load_s = time.perf_counter() - t0
            enc.encode(audio[:16000])
            enc_s, feats = timed(lambda: enc.encode(audio), args.repeat)
            print(
                f"| hubert-soft | {feats.shape[1]} | {load_s:.1f} | {enc_s:.2f} | "
                f"{enc_s / args.seconds:.3f} | {feats.shape[0]} frames |"
            )
            clear_model_cache()
    if args.ct2:
        for compute_type in ("float32", "int8"):
            enc = make_encoder("whisper-ct2", args.ct2, compute_type=compute_type)
            enc.encode(audio[:16000])
            enc_s, feats = timed(lambda enc=enc: enc.encode(audio), args.repeat)
            print(
                f"| ct2 {Path(args.ct2).name} {compute_type} | {feats.shape[1]} | - | "
                f"{enc_s:.2f} | {enc_s / args.seconds:.3f} | {feats.shape[0]} frames |"
            )
    if not args.no_speaker:
        from svc_core.speaker import speaker_embedding, voice_encoder

        t0 = time.perf_counter()
        voice_encoder(args.device)
        load_s = time.perf_counter() - t0
        for seconds in (2.0, 5.0, 10.0):
            clip = test_audio(seconds)
            speaker_embedding(clip, 16000)
            s, _ = timed(lambda clip=clip: speaker_embedding(clip, 16000), args.repeat + 1)
            print(
                f"| resemblyzer {seconds:g}-s slice | 256 | {load_s:.1f} | {s:.3f} | "
                f"{s / seconds:.3f} | |"
            )


if __name__ == "__main__":
    main()
