"""The so-VITS-svc 5.0 model: configs, shapes for random lengths, module properties, inference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from svc_core.errors import BadInputError
from svc_core.model import builders
from svc_core.model.align import align_to_frames
from svc_core.model.commons import f0_to_coarse
from svc_core.model.config import config_from_dict, config_hash, load_config


@pytest.fixture(scope="module")
def tiny():
    return load_config("tiny")


# -- config --------------------------------------------------------------------------------


def test_builtin_configs_load_and_match_5_0_signal_settings():
    base = load_config("base")
    assert (base.audio.sample_rate, base.audio.hop_length, base.audio.segment_size) == (
        32000,
        320,
        8000,
    )
    assert (base.model.spk_dim, base.model.vec_dim) == (256, 256)
    tiny = load_config("tiny")
    assert tiny.audio.segment_size % tiny.audio.hop_length == 0


def test_config_errors_are_plain(tiny):
    d = tiny.to_dict()
    d["model"]["hiden_channels"] = 3
    with pytest.raises(BadInputError, match="unknown keys: hiden_channels"):
        config_from_dict(d)
    d = tiny.to_dict()
    d["audio"]["hop_length"] = 128  # decoder upsamples by 64
    with pytest.raises(BadInputError, match="multiply to 64"):
        config_from_dict(d)
    with pytest.raises(BadInputError, match="neither a built-in"):
        load_config("no-such-config")


def test_config_hash_tracks_the_model_not_bookkeeping(tiny):
    h = config_hash(tiny)
    assert config_hash(dataclasses.replace(tiny, name="renamed")) == h
    lazier = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, save_interval=99))
    assert config_hash(lazier) == h
    assert config_hash(tiny.with_content_dims(64, 16)) != h
    faster = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, learning_rate=1e-3))
    assert config_hash(faster) != h


# -- shapes --------------------------------------------------------------------------------


def _batch(config, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, t = len(lengths), max(lengths)
    m, a = config.model, config.audio
    lengths_t = torch.tensor(lengths)
    mask = (torch.arange(t)[None] < lengths_t[:, None]).float()
    wav = torch.randn(b, t * a.hop_length, generator=g) * 0.1
    wav = wav * torch.repeat_interleave(mask, a.hop_length, dim=1)
    return {
        "ppg": torch.randn(b, t, m.ppg_dim, generator=g),
        "vec": torch.randn(b, t, m.vec_dim, generator=g),
        "f0": (100 + 300 * torch.rand(b, t, generator=g)) * (torch.rand(b, t, generator=g) > 0.2),
        "wav": wav,
        "spk": torch.randn(b, m.spk_dim, generator=g),
        "lengths": lengths_t,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_forward_backward_for_random_lengths(tiny, seed):
    rng = np.random.default_rng(seed)
    seg = tiny.audio.segment_frames
    lengths = [int(x) for x in rng.integers(seg, 3 * seg, size=int(rng.integers(1, 4)))]
    torch.manual_seed(seed)
    gen, disc = builders.build_generator(tiny), builders.build_discriminator(tiny)
    spec_fn = builders.build_linear_spectrogram(tiny)
    b = _batch(tiny, lengths, seed)
    spec = spec_fn(b["wav"])
    assert spec.shape == (len(lengths), tiny.audio.spec_channels, max(lengths))
    out = gen(b["ppg"], b["vec"], b["f0"], spec, b["spk"], b["lengths"])
    assert out.audio.shape == (len(lengths), 1, tiny.audio.segment_size)
    assert torch.all(out.starts + seg <= b["lengths"])  # the segment lies inside each item
    assert out.z_f.shape == out.z_r.shape == (len(lengths), tiny.model.inter_channels, max(lengths))
    assert out.spk_pred.shape == (len(lengths), tiny.model.spk_dim)
    scores = disc(out.audio)
    # 5.0's order: one per resolution, one per period, then the scale discriminator
    assert len(scores) == len(tiny.model.mpd_periods) + len(tiny.model.mrd_resolutions) + 1
    loss = sum(s.float().pow(2).mean() for _, s in scores) + out.z_f.pow(2).mean()
    loss = loss + out.spk_pred.pow(2).mean()
    loss.backward()
    grads = [p.grad for p in gen.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("frames", [1, 7, 33, 100])
def test_infer_length_is_frames_times_hop_and_tail_is_silent(tiny, frames):
    torch.manual_seed(0)
    gen = builders.build_generator(tiny).eval()
    b = _batch(tiny, [frames, max(frames // 2, 1)])
    audio = gen.infer(b["ppg"], b["vec"], b["f0"], b["spk"], b["lengths"])
    hop = tiny.audio.hop_length
    assert audio.shape == (2, frames * hop)
    assert torch.all(audio[1, max(frames // 2, 1) * hop :] == 0)
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0


def test_input_shape_errors_are_plain(tiny):
    gen = builders.build_generator(tiny).eval()
    b = _batch(tiny, [40])
    with pytest.raises(BadInputError, match="needs 'ppg'"):
        gen.infer(None, b["vec"], b["f0"], b["spk"])
    with pytest.raises(BadInputError, match="'vec' must be"):
        gen.infer(b["ppg"], b["vec"][:, :, :3], b["f0"], b["spk"])


# -- module properties ---------------------------------------------------------------------


def test_relative_attention_matches_a_naive_implementation():
    from svc_core.model.modules import MultiHeadAttention

    torch.manual_seed(0)
    att = MultiHeadAttention(channels=8, n_heads=2, window=2).eval()
    t = 6
    x = torch.randn(1, 8, t)
    mask = torch.ones(1, 1, t, t)
    got = att(x, mask)

    d = att.k_channels
    q = att.conv_q(x).view(1, 2, d, t).transpose(2, 3) / d**0.5
    k = att.conv_k(x).view(1, 2, d, t).transpose(2, 3)
    v = att.conv_v(x).view(1, 2, d, t).transpose(2, 3)

    def rel(emb, off):  # zero embedding outside the window
        return emb[0, off + att.window] if abs(off) <= att.window else torch.zeros(d)

    scores = torch.zeros(1, 2, t, t)
    for i in range(t):
        for j in range(t):
            scores[0, :, i, j] = (q[0, :, i] * (k[0, :, j] + rel(att.emb_rel_k, j - i))).sum(-1)
    p = torch.softmax(scores, -1)
    out = torch.zeros(1, 2, t, d)
    for i in range(t):
        for j in range(t):
            out[0, :, i] += p[0, :, i, j, None] * (v[0, :, j] + rel(att.emb_rel_v, j - i))
    want = att.conv_o(out.transpose(2, 3).reshape(1, 8, t))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_flow_is_invertible_and_its_log_determinants_cancel(tiny):
    torch.manual_seed(0)
    gen = builders.build_generator(tiny)
    for p in gen.flow.parameters():  # leave the identity initialisation
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(2, tiny.model.inter_channels, 20)
    mask = torch.ones(2, 1, 20)
    spk = torch.randn(2, tiny.model.spk_dim)
    y, logdet = gen.flow(x, mask, spk)
    assert not torch.allclose(y, x)
    assert torch.all(logdet != 0)  # SNAC scales by the speaker: not volume-preserving
    back, logdet_r = gen.flow(y, mask, spk, reverse=True)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logdet_r, -logdet, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("frames", [1, 5, 26])
def test_nsf_decoder_length_with_the_base_upsampling(frames):
    from svc_core.model.decoder import Generator

    base = load_config("base").model
    dec = Generator(
        32000,
        256,
        16,
        32,
        base.upsample_rates,
        base.upsample_kernel_sizes,
        (3,),
        ((1, 3),),
    )
    y = dec(torch.randn(1, 16, frames), torch.full((1, frames), 200.0), torch.randn(1, 256))
    assert y.shape == (1, 1, frames * 320)


def test_sine_source_is_at_f0():
    from svc_core.model.decoder import SineGen

    src = SineGen(16000, harmonic_num=2)
    torch.manual_seed(0)
    h = src(torch.full((1, 16000, 1), 250.0))  # [1, N, 3]: f0, 2 f0, 3 f0
    for k in range(3):
        spec = np.abs(np.fft.rfft(h[0, :, k].numpy()))
        assert np.argmax(spec) == 250 * (k + 1)  # 1-Hz bins over one second
    unvoiced = src(torch.zeros(1, 16000, 1))
    assert unvoiced.std() < 0.05  # noise only (sine_amp / 3)


def test_f0_to_coarse_bins():
    f0 = torch.tensor([0.0, 30.0, 50.0, 100.0, 440.0, 1100.0, 3000.0])
    c = f0_to_coarse(f0)
    assert c[0] == 1 and c[1] == 1 and c[2] == 1 and c[-2] == 255 and c[-1] == 255
    assert torch.all(c[2:].diff() >= 0) and c[3] < c[4] < c[5]
    assert c.min() >= 1 and c.max() <= 255


@pytest.mark.parametrize("frames", [1, 3, 50])
def test_spectrogram_frames_align_with_hops(tiny, frames):
    spec = builders.build_linear_spectrogram(tiny)
    mel = builders.build_mel_spectrogram(tiny)
    x = torch.randn(2, frames * tiny.audio.hop_length)
    assert spec(x).shape == (2, tiny.audio.spec_channels, frames)
    assert mel(x).shape == (2, tiny.audio.n_mels, frames)


def test_alignment_is_5_0s_repeat_for_50_fps_content():
    x = np.arange(10)[:, None] * np.ones((1, 3))
    y = align_to_frames(x, 50.0, 20, 320, 32000)  # 100 model frames/s
    np.testing.assert_array_equal(y, np.repeat(x, 2, axis=0))
    z = align_to_frames(np.arange(7.0), 100.0, 9, 320, 32000)  # clamped at the end
    np.testing.assert_array_equal(z, [0, 1, 2, 3, 4, 5, 6, 6, 6])


def test_parameter_counts_are_what_bench_reports(tiny):
    # the exact numbers are in bench/train.md; here only their order of magnitude
    g, d = builders.build_generator(tiny), builders.build_discriminator(tiny)
    assert builders.count_parameters(g) < 200_000 and builders.count_parameters(d) < 50_000


# -- inference API -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice(tiny):
    from svc_core.model.inference import VoiceModel

    torch.manual_seed(0)
    gen = builders.build_generator(tiny)
    spk = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    return VoiceModel(tiny, gen.state_dict(), spk, {})


@pytest.mark.parametrize("seconds", [0.05, 0.31, 1.7])
def test_synthesize_length_for_random_durations(voice, tiny, seconds):
    rng = np.random.default_rng(int(seconds * 100))
    n_f0 = int(seconds * 100) + 1  # an F0 extractor at 100 frames/s
    n_c = int(seconds * 50) + 1
    ppg = rng.standard_normal((n_c, tiny.model.ppg_dim))
    vec = rng.standard_normal((n_c, tiny.model.vec_dim))
    f0 = np.where(rng.random(n_f0) > 0.3, 220.0, 0.0)
    n_frames = voice.n_frames_for(seconds)
    y = voice.synthesize(ppg, vec, f0, f0_rate=100.0, n_frames=n_frames)
    assert y.dtype == np.float32 and y.shape == (n_frames * tiny.audio.hop_length,)
    assert np.all(np.isfinite(y))
    again = voice.synthesize(ppg, vec, f0, f0_rate=100.0, n_frames=n_frames)
    np.testing.assert_array_equal(y, again)  # seeded: reproducible
    # default length: the F0 curve's duration
    assert (
        voice.synthesize(ppg, vec, f0, f0_rate=100.0).shape[0]
        == round(n_f0 / 100 * voice.frame_rate) * tiny.audio.hop_length
    )


def test_weight_norm_folding_keeps_the_output(tiny):
    from svc_core.model.inference import VoiceModel

    torch.manual_seed(3)
    gen = builders.build_generator(tiny).eval()
    b = _batch(tiny, [30])
    torch.manual_seed(1)
    want = gen.infer(b["ppg"], b["vec"], b["f0"], b["spk"])
    vm = VoiceModel(tiny, gen.state_dict())
    torch.manual_seed(1)
    got = vm.generator.infer(b["ppg"], b["vec"], b["f0"], b["spk"])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_synthesize_rejects_bad_inputs(voice, tiny):
    ppg = np.zeros((10, tiny.model.ppg_dim))
    vec = np.zeros((10, tiny.model.vec_dim))
    f0 = np.full(20, 200.0)
    with pytest.raises(BadInputError, match="'ppg' must be"):
        voice.synthesize(ppg[:, :3], vec, f0, f0_rate=100.0)
    with pytest.raises(BadInputError, match="needs 'vec'"):
        voice.synthesize(ppg, None, f0, f0_rate=100.0)
    with pytest.raises(BadInputError, match="covers"):
        voice.synthesize(ppg[:2], vec[:2], f0, f0_rate=100.0)
    with pytest.raises(BadInputError, match="negative"):
        voice.synthesize(ppg, vec, -f0, f0_rate=100.0)
    with pytest.raises(BadInputError, match="speaker"):
        voice.synthesize(ppg, vec, f0, np.zeros(5), f0_rate=100.0)
