"""The conversion quality report: speaker similarity, pitch accuracy, plain verdicts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from svc_core.f0.base import F0Params
from svc_core.quality import quality_report
from svc_core.speaker import centroid, speaker_embedding
from tests.common import synth

HARVEST = F0Params(method="harvest")
TEXTS = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Every morning she sings a quiet song while the kettle boils.",
    "Seven silver bells were ringing across the frozen valley tonight.",
)


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng missing")
    d = tmp_path_factory.mktemp("voices")
    out = {}
    for name, voice in (("a", None), ("b", "en+Annie")):
        clips = []
        for i, text in enumerate(TEXTS):
            path = synth.espeak_speech(text, d / f"{name}{i}.wav", voice=voice)
            audio, sr = sf.read(path, dtype="float32")
            clips.append(audio)
        out[name] = (clips, sr)
    return out


def test_similarity_tells_target_from_source(voices):
    (a, sr), (b, _) = voices["a"], voices["b"]
    target = centroid([speaker_embedding(x, sr) for x in a[1:]])
    good = quality_report(a[0], sr, b[0], sr, target, f0=HARVEST)
    assert good.similarity_to_target > good.similarity_to_source + 0.05
    assert not any("source singer" in v for v in good.verdicts)
    # a "conversion" that kept the source singer's timbre
    leaky = quality_report(b[1], sr, b[0], sr, target, f0=HARVEST)
    assert leaky.similarity_to_source > leaky.similarity_to_target
    assert any("more like the source singer" in v for v in leaky.verdicts)


def test_pitch_follows_transposed_melody_and_octave_errors_are_named(voices):
    (a, sr) = voices["a"]
    target = speaker_embedding(a[0], sr)
    src = synth.tone(220.0, 3.0, sr=sr, amp=0.3, harmonics=6, vibrato_hz=5, vibrato_cents=40)
    up = synth.tone(440.0, 3.0, sr=sr, amp=0.3, harmonics=6, vibrato_hz=5, vibrato_cents=40)
    seen: list[float] = []
    ok = quality_report(
        up,
        sr,
        src,
        sr,
        target,
        transpose_semitones=12,
        f0=HARVEST,
        progress=lambda _s, f: seen.append(f),
    )
    assert ok.pitch["raw_pitch_accuracy"] > 0.9
    assert seen[0] == 0.3 and seen[-1] == 1.0 and seen == sorted(seen)  # step by step
    assert any("Follows the melody" in v for v in ok.verdicts)
    wrong = quality_report(up, sr, src, sr, target, transpose_semitones=0, f0=HARVEST)
    assert wrong.pitch["raw_pitch_accuracy"] < 0.1 and wrong.pitch["octave_errors"] > 0.8
    assert any("Octave jumps" in v for v in wrong.verdicts)
    d = wrong.to_dict()
    assert d["transpose_semitones"] == 0.0 and isinstance(d["verdicts"], list)


def test_silent_result_is_judged_plainly(voices):
    (a, sr) = voices["a"]
    target = speaker_embedding(a[0], sr)
    q = quality_report(np.zeros(sr * 2, np.float32), sr, a[0], sr, target, f0=HARVEST)
    assert q.similarity_to_target is None
    assert any("Too little voice" in v for v in q.verdicts)
