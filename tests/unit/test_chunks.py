"""Chunked conversion: cuts at silences, unity-gain crossfades, exact output lengths."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from svc_core.convert.chunks import ChunkParams, convert_in_chunks, plan_chunks
from tests.common import synth

SR = 16000
SMALL = ChunkParams(max_chunk_s=2.0, search_s=1.0, context_s=0.25, crossfade_s=0.05)


@pytest.mark.parametrize("seed", range(6))
def test_identity_convert_reconstructs_input(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(100, 9 * SR))
    x = rng.standard_normal(n).astype(np.float32) * 0.1
    sizes: list[int] = []

    def ident(piece, start):
        np.testing.assert_array_equal(piece, x[start : start + len(piece)])
        sizes.append(len(piece))
        return piece

    y = convert_in_chunks(x, SR, ident, SMALL)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-6)
    assert max(sizes) <= int((SMALL.max_chunk_s + 2 * SMALL.context_s) * SR) + 1


@pytest.mark.parametrize("n", [SR * 5 + 7, SR * 7 + 333, 1234])
def test_rate_change_lengths(n):
    x = synth.noise(n / SR, sr=SR, seed=n)[:n]

    def up(piece, _start):  # a "model" at 32 kHz that returns one hop (320) too many samples
        return np.concatenate([soxr.resample(piece, SR, 32000), np.zeros(320, np.float32)])

    y = convert_in_chunks(x, SR, up, SMALL, out_sr=32000)
    assert len(y) == round(n * 2)


def test_cuts_fall_in_silences():
    gap = synth.silence(0.3, SR)
    parts = []
    for i in range(6):
        parts += [synth.tone(200.0 + 20 * i, 1.3, sr=SR), gap]
    x = np.concatenate(parts)
    silent = np.abs(x) < 1e-6
    chunks = plan_chunks(x, SR, SMALL)
    assert len(chunks) >= 3
    for a, b in zip(chunks[:-1], chunks[1:], strict=True):
        assert a.end == b.start
        assert silent[a.end - 40 : a.end + 40].all(), a.end / SR
    assert all(c.end - c.start <= SMALL.max_chunk_s * SR for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(x)


def test_sustained_tone_across_chunk_edge_has_no_click():
    f0, amp = 231.7, 0.5
    x = synth.tone(f0, 7.0, sr=SR, amp=amp)  # no silence anywhere: cuts land mid-tone
    chunks = plan_chunks(x, SR, SMALL)
    assert len(chunks) >= 3
    calls = iter(range(len(chunks)))

    def disagreeing_model(piece, start):
        # Each chunk comes back with the opposite polarity of its neighbour: the worst
        # disagreement two conversions of the same note can have at a cut.
        i = next(calls)
        assert start == chunks[i].ctx_start
        n = start + np.arange(len(piece))
        return ((-1) ** i * amp * np.sin(2 * np.pi * f0 * n / SR)).astype(np.float32)

    y = convert_in_chunks(x, SR, disagreeing_model, SMALL)
    slope = amp * 2 * np.pi * f0 / SR  # the largest step of a clean sine
    assert np.max(np.abs(np.diff(y))) < 1.3 * slope
    # without the crossfade the output would jump at the cuts (2|v| at each cut)
    jumps = [2 * amp * abs(np.sin(2 * np.pi * f0 * c.end / SR)) for c in chunks[:-1]]
    assert max(jumps) > 3 * slope


def test_silence_stays_silent_and_progress_and_stop():
    x = synth.silence(5.0, SR)
    seen: list[float] = []
    y = convert_in_chunks(x, SR, lambda p, _s: p * 3, SMALL, progress=lambda _s, f: seen.append(f))
    assert not y.any() and seen[-1] == 1.0
    from svc_core.errors import Cancelled

    with pytest.raises(Cancelled):
        convert_in_chunks(x, SR, lambda p, _s: p, SMALL, should_stop=lambda: True)


def test_interrupted_conversion_resumes_from_cached_chunks(tmp_path):
    from svc_core.errors import Cancelled

    rng = np.random.default_rng(3)
    x = rng.standard_normal(9 * SR).astype(np.float32) * 0.1
    n_chunks = len(plan_chunks(x, SR, SMALL))
    assert n_chunks >= 4
    calls: list[int] = []

    def model(piece, start):
        calls.append(start)
        return np.tanh(piece * 3)  # any deterministic processing

    straight = convert_in_chunks(x, SR, model, SMALL)
    calls.clear()
    with pytest.raises(Cancelled):  # stopped after two chunks (a worker shutting down)
        convert_in_chunks(
            x, SR, model, SMALL, cache_dir=tmp_path / "c", should_stop=lambda: len(calls) >= 2
        )
    assert len(calls) == 2 and len(list((tmp_path / "c").glob("chunk_*.npy"))) == 2
    calls.clear()
    resumed = convert_in_chunks(x, SR, model, SMALL, cache_dir=tmp_path / "c")
    assert len(calls) == n_chunks - 2  # only the chunks not done before
    np.testing.assert_array_equal(resumed, straight)
