"""Vocal separation through the real audio-separator code path, offline, on tiny MDX-Net models.

The tiny models are STFT masks in UVR's MDX-Net ONNX format (tests/common/tiny_models.py): one
keeps the bins below ~690 Hz, so a 220 Hz "voice" must come out as vocals and a 3 kHz
"instrument" as the instrumental. Sockets are blocked in every test: nothing may be downloaded.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from svc_core.errors import (
    AssetMissingError,
    BadAudioError,
    BadInputError,
    Cancelled,
    SvcError,
)
from svc_core.separation import SeparationParams, get_backend, separate, use_stems
from tests.common.tiny_models import install_tiny_mdx, register_mdx_model

SR = 44100
VOICE_HZ, REVERB_HZ, INSTRUMENT_HZ = 220.0, 440.0, 3000.0


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    install_tiny_mdx(d, "tiny_vocals.onnx", cutoff_bin=32)  # < ~690 Hz -> Vocals
    # Instrumental-first, with UVR's usual compensation factor: vocals = mix - 1.03 * inst.
    install_tiny_mdx(
        d, "tiny_inst.onnx", cutoff_bin=33, compensate=1.03, primary_stem="Instrumental"
    )
    # A "de-reverb" second pass: keeps < ~340 Hz as "No Reverb", the rest is "Reverb".
    install_tiny_mdx(d, "tiny_dereverb.onnx", cutoff_bin=16, primary_stem="No Reverb")
    return d


def _tone(hz: float, n: int, amp: float) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(n) / SR)).astype(np.float32)


def _amp(audio: np.ndarray, hz: float, sr: int = SR) -> float:
    """Amplitude of the sinusoid at ``hz`` in channel 0 of ``[T, C]`` audio (least squares)."""
    x = (audio[:, 0] if audio.ndim == 2 else audio).astype(np.float64)
    t = np.arange(len(x)) / sr
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(a, b))


@pytest.fixture
def song(tmp_path) -> tuple[Path, np.ndarray]:
    """2.3 s stereo 24-bit song: voice + reverb-ish partial (both channels) + an instrument."""
    n = int(2.3 * SR) + 7  # odd length
    voice = _tone(VOICE_HZ, n, 0.2) + _tone(REVERB_HZ, n, 0.1)
    mix = np.stack([voice + _tone(INSTRUMENT_HZ, n, 0.2), voice + _tone(INSTRUMENT_HZ, n, 0.1)])
    path = tmp_path / "song.wav"
    sf.write(path, mix.T, SR, subtype="PCM_24")
    data, _ = sf.read(path, dtype="float32")  # the quantised mixture actually on disk
    return path, data


def _read(path: Path) -> np.ndarray:
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "FLOAT")
    data, _ = sf.read(path, dtype="float32")
    return data


def test_mixture_splits_into_vocals_and_instrumental(models_dir, song, tmp_path):
    src, mix = song
    seen: list[float] = []
    res = separate(
        src,
        tmp_path / "out",
        SeparationParams(model="tiny_vocals.onnx"),
        models_dir,
        progress=lambda stage, f: seen.append(f),
    )
    vocals, inst = _read(res.vocals), _read(res.instrumental)
    assert vocals.shape == inst.shape == mix.shape and res.frames == len(mix)
    # MDX-Net: instrumental = mixture - compensate * vocals (compensate = 1 here) ...
    assert np.abs(vocals + inst - mix).max() < 1e-5
    # ... and at the mixture's level: the voice partials are in the vocals, not the instrumental.
    assert _amp(vocals, VOICE_HZ) == pytest.approx(0.2, rel=0.02)
    assert _amp(vocals, REVERB_HZ) == pytest.approx(0.1, rel=0.02)
    assert _amp(vocals, INSTRUMENT_HZ) < 1e-3
    assert _amp(inst, INSTRUMENT_HZ) == pytest.approx(0.2, rel=0.02)
    assert _amp(inst, VOICE_HZ) < 1e-3
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert dict(res.extra) == {} and res.second_pass is None
    assert not list((tmp_path / "out").glob(".separate-*"))  # the work folder is gone


def test_quiet_mono_low_rate_input(models_dir, tmp_path):
    """A quiet mono 22.05 kHz file: stems are 44.1 kHz stereo and keep the input's level."""
    n = int(1.5 * 22050)
    t = np.arange(n) / 22050
    mono = 0.05 * np.sin(2 * np.pi * VOICE_HZ * t) + 0.05 * np.sin(2 * np.pi * INSTRUMENT_HZ * t)
    src = tmp_path / "quiet.wav"
    sf.write(src, mono.astype(np.float32), 22050, subtype="PCM_16")
    res = separate(src, tmp_path / "out", SeparationParams(model="tiny_vocals.onnx"), models_dir)
    vocals, inst = _read(res.vocals), _read(res.instrumental)
    assert abs(len(vocals) - 2 * n) <= 2 and len(vocals) == len(inst) == res.frames
    assert np.allclose(vocals[:, 0], vocals[:, 1])
    assert _amp(vocals, VOICE_HZ) == pytest.approx(0.05, rel=0.03)
    assert _amp(inst, INSTRUMENT_HZ) == pytest.approx(0.05, rel=0.03)


def test_instrumental_first_model_and_compensation(models_dir, song, tmp_path):
    src, mix = song
    res = separate(src, tmp_path / "o", SeparationParams(model="tiny_inst.onnx"), models_dir)
    vocals, inst = _read(res.vocals), _read(res.instrumental)
    # The model's primary stem is the instrumental (here: the low band); vocals are the rest.
    assert np.abs(vocals + 1.03 * inst - mix).max() < 1e-5
    assert _amp(inst, VOICE_HZ) == pytest.approx(0.2, rel=0.02)
    assert _amp(vocals, INSTRUMENT_HZ) == pytest.approx(0.2, rel=0.02)


def test_second_pass_dereverb(models_dir, song, tmp_path):
    src, _ = song
    params = SeparationParams(model="tiny_vocals.onnx", second_pass="tiny_dereverb.onnx")
    res = separate(src, tmp_path / "out", params, models_dir)
    assert set(res.extra) == {"vocals_before_second_pass", "second_pass_residual"}
    before = _read(res.extra["vocals_before_second_pass"])
    vocals = _read(res.vocals)
    residual = _read(res.extra["second_pass_residual"])
    assert np.abs(vocals + residual - before).max() < 1e-5
    assert _amp(vocals, VOICE_HZ) == pytest.approx(0.2, rel=0.02)
    assert _amp(vocals, REVERB_HZ) < 1e-3
    assert _amp(residual, REVERB_HZ) == pytest.approx(0.1, rel=0.02)
    assert res.second_pass == "tiny_dereverb.onnx"


def test_vocals_only_input_skips_the_main_pass(song, tmp_path):
    src, mix = song
    # No models at all: the main pass must not even be looked up.
    res = separate(src, tmp_path / "o", SeparationParams(input_kind="vocals"), tmp_path / "none")
    assert res.instrumental is None and res.model is None
    assert np.array_equal(_read(res.vocals), mix)


def test_use_stems_passes_a_pair_through(tmp_path):
    n = SR
    sf.write(tmp_path / "v.wav", _tone(VOICE_HZ, n, 0.3), SR, subtype="PCM_16")
    sf.write(tmp_path / "i.flac", _tone(INSTRUMENT_HZ, n - 500, 0.3), SR)
    res = use_stems(tmp_path / "v.wav", tmp_path / "i.flac", tmp_path / "out")
    vocals, inst = _read(res.vocals), _read(res.instrumental)
    assert vocals.shape == inst.shape == (n, 2)
    assert np.all(inst[-500:] == 0)

    sf.write(tmp_path / "long.wav", _tone(INSTRUMENT_HZ, 3 * n, 0.3), SR)
    with pytest.raises(BadInputError, match="differ in length by 2.0 s"):
        use_stems(tmp_path / "v.wav", tmp_path / "long.wav", tmp_path / "out2")
    alone = use_stems(tmp_path / "v.wav", None, tmp_path / "out3")
    assert alone.instrumental is None and _read(alone.vocals).shape == (n, 2)


def test_missing_model_names_the_command(song, tmp_path):
    src, _ = song
    empty = tmp_path / "models"
    empty.mkdir()
    with pytest.raises(AssetMissingError, match=r"svc-studio assets pull mdx-voc-ft"):
        separate(src, tmp_path / "o", SeparationParams(), empty)
    # The model file alone is not enough: audio-separator would download its sidecars.
    (empty / "UVR-MDX-NET-Voc_FT.onnx").write_bytes(b"x")
    with pytest.raises(AssetMissingError, match="assets pull uvr-download-checks"):
        separate(src, tmp_path / "o", SeparationParams(model="mdx-voc-ft"), empty)
    with pytest.raises(AssetMissingError, match="neither a registered model"):
        separate(src, tmp_path / "o", SeparationParams(model="nope.onnx"), empty)
    with pytest.raises(BadInputError, match="not a separation model"):
        separate(src, tmp_path / "o", SeparationParams(model="rmvpe"), empty)
    with pytest.raises(BadInputError, match="cannot be used as a second pass"):
        separate(
            src,
            tmp_path / "o",
            SeparationParams(input_kind="vocals", second_pass="mdx-voc-ft"),
            empty,
        )


def test_unlisted_sidecar_for_custom_model(models_dir, song, tmp_path):
    src, _ = song
    d = tmp_path / "m"
    install_tiny_mdx(d, "a.onnx")
    (d / "vr_model_data.json").unlink()
    with pytest.raises(AssetMissingError, match="assets pull uvr-vr-model-data"):
        separate(src, tmp_path / "o", SeparationParams(model="a.onnx"), d)


def test_corrupt_model_fails_with_a_plain_error(song, tmp_path):
    src, _ = song
    d = tmp_path / "m"
    d.mkdir()
    (d / "broken.onnx").write_bytes(b"\x08\x07 this is not an onnx graph" * 100)
    register_mdx_model(d, "broken.onnx")  # registered: the loader gets as far as onnxruntime
    with pytest.raises(SvcError, match="'broken.onnx' in .* failed to load: the file may be"):
        separate(src, tmp_path / "o", SeparationParams(model="broken.onnx"), d)

    install_tiny_mdx(d, "changed.onnx")
    (d / "changed.onnx").write_bytes((d / "changed.onnx").read_bytes() + b"\x00")  # MD5 changes
    with pytest.raises(SvcError, match="MD5 is not listed"):
        separate(src, tmp_path / "o", SeparationParams(model="changed.onnx"), d)
    assert not list((tmp_path / "o").glob(".separate-*"))


def test_loader_calling_sys_exit_does_not_end_the_process(song, tmp_path, monkeypatch):
    """audio-separator's MDX23C/Roformer loader calls sys.exit(1) on a bad checkpoint."""
    from audio_separator.separator import Separator

    src, _ = song
    d = tmp_path / "m"
    install_tiny_mdx(d, "exits.onnx")

    def exit_like_mdxc(self, *args, **kwargs):
        sys.exit(1)

    monkeypatch.setattr(Separator, "load_model", exit_like_mdxc)
    with pytest.raises(SvcError, match="failed to load"):
        separate(src, tmp_path / "o", SeparationParams(model="exits.onnx"), d)


def test_model_is_loaded_once_per_process(models_dir, song, tmp_path, monkeypatch):
    from audio_separator.separator import Separator

    src, _ = song
    get_backend().clear()
    calls: list[str] = []
    original = Separator.load_model

    def counting(self, model_filename, *args, **kwargs):
        calls.append(model_filename)
        return original(self, model_filename, *args, **kwargs)

    monkeypatch.setattr(Separator, "load_model", counting)
    for i in range(2):
        separate(src, tmp_path / f"o{i}", SeparationParams(model="tiny_vocals.onnx"), models_dir)
    assert calls == ["tiny_vocals.onnx"]


def test_silent_input_and_cancel(models_dir, tmp_path, song):
    src, _ = song
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((SR, 2), np.float32), SR)
    with pytest.raises(BadAudioError, match="silent"):
        separate(silent, tmp_path / "o", SeparationParams(model="tiny_vocals.onnx"), models_dir)
    with pytest.raises(Cancelled):
        separate(
            src,
            tmp_path / "c",
            SeparationParams(model="tiny_vocals.onnx", second_pass="tiny_dereverb.onnx"),
            models_dir,
            should_stop=lambda: True,
        )
    assert not list((tmp_path / "c").glob("*.wav"))


def test_cli_separate(models_dir, song, tmp_path):
    from svc_core.commands.separate import separate_cmd

    src, mix = song
    out = tmp_path / "cli"
    args = [str(src), str(out), "--model", "tiny_vocals.onnx", "--models-dir", str(models_dir)]
    res = CliRunner().invoke(separate_cmd, args)
    assert res.exit_code == 0, res.output
    assert _read(out / "vocals.wav").shape == mix.shape
    res = CliRunner().invoke(separate_cmd, [str(src), str(out), "--models-dir", str(tmp_path)])
    assert res.exit_code == 1 and "svc-studio assets pull mdx-voc-ft" in res.output


def test_progress_within_a_pass_and_a_cancel_between_its_chunks(models_dir, tmp_path):
    """audio-separator reports its chunk loop only to tqdm; the backend turns it into progress
    within the pass and a stop check between chunks (a cancel once waited for the whole
    song)."""
    n = 20 * SR
    mix = np.stack([_tone(VOICE_HZ, n, 0.2) + _tone(INSTRUMENT_HZ, n, 0.2)] * 2)
    src = tmp_path / "long.wav"
    sf.write(src, mix.T, SR, subtype="FLOAT")
    params = SeparationParams(model="tiny_vocals.onnx")
    seen: list[float] = []
    separate(src, tmp_path / "o", params, models_dir, progress=lambda _s, f: seen.append(f))
    inside = sorted({f for f in seen if 0.05 < f < 0.9})
    assert len(inside) >= 3, seen  # chunk by chunk, not only per pass
    assert seen == sorted(seen)

    reports: list[float] = []

    def stop_after_two_chunks() -> bool:
        return len([f for f in reports if 0.05 < f < 0.9]) >= 2

    with pytest.raises(Cancelled):
        separate(
            src,
            tmp_path / "c",
            params,
            models_dir,
            progress=lambda _s, f: reports.append(f),
            should_stop=stop_after_two_chunks,
        )
    assert max(reports) < 0.9  # stopped inside the pass, not after it
    assert not list((tmp_path / "c").glob("*.wav"))
    # the model's module has its own tqdm back
    import audio_separator.separator.architectures.mdx_separator as mdx

    assert mdx.tqdm.__module__.startswith("tqdm")
