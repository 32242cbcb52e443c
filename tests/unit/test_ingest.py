"""Ingest and audio I/O on files the tests make: formats, rates, channels, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from svc_core.audio.dsp import loudness_lufs, normalize_loudness, peak_dbfs, resample, to_channels
from svc_core.audio.io import load_audio, probe, save_wav
from svc_core.errors import BadAudioError, Cancelled
from svc_core.ingest import IngestParams, ingest_file
from svc_core.utils import file_sha256
from tests.common import synth

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def dominant_hz(audio: np.ndarray, sr: int) -> float:
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spec) * sr / len(mono))


@pytest.mark.parametrize(
    ("sr", "channels", "subtype"),
    [
        (48000, 2, "PCM_16"),
        (8000, 1, "PCM_16"),
        (192000, 2, "PCM_24"),
        (22050, 6, "FLOAT"),
        (44100, 1, "PCM_32"),
        (96000, 1, "PCM_U8"),
    ],
)
def test_ingest_wav_rates_channels_depths(tmp_path, sr, channels, subtype):
    f0 = 441.0 if sr > 8000 else 331.0
    mono = synth.tone(f0, 1.5, sr=sr, amp=0.5)
    audio = np.stack([mono] * channels)
    src = synth.write(tmp_path / f"in_{sr}.wav", audio, sr, subtype=subtype)
    out = tmp_path / "out.wav"
    res = ingest_file(src, out, IngestParams())
    data, out_sr = sf.read(out, always_2d=True)
    info = sf.info(out)
    assert out_sr == 44100 and info.subtype == "FLOAT"
    assert data.shape[1] == min(channels, 2) == res.output_channels
    assert res.sample_rate == sr and res.channels == channels
    assert abs(data.shape[0] / 44100 - 1.5) < 1e-3
    assert abs(res.duration_s - 1.5) < 1e-3
    assert abs(dominant_hz(data.T, 44100) - f0) < 2.0
    assert res.sha256 == file_sha256(src) and res.size_bytes == src.stat().st_size
    # a sine of amplitude 0.5 is about -9 LUFS (BS.1770 weights 441 Hz at about +0 dB)
    assert -14 < res.loudness_lufs < -4
    assert abs(res.peak_dbfs - 20 * np.log10(0.5)) < 0.3


@needs_ffmpeg
@pytest.mark.parametrize("ext", ["flac", "mp3", "ogg", "m4a", "opus"])
def test_ingest_compressed_formats(tmp_path, ext):
    src_wav = synth.write(tmp_path / "tone.wav", synth.tone(440.0, 2.0, sr=48000), 48000)
    src = synth.encode_ffmpeg(src_wav, tmp_path / f"tone.{ext}")
    out = tmp_path / "out.wav"
    res = ingest_file(src, out)
    data, sr = sf.read(out, always_2d=True)
    assert sr == 44100
    # encoders add priming/padding: within 60 ms of the original length
    assert abs(data.shape[0] / sr - 2.0) < 0.06, data.shape
    assert abs(dominant_hz(data.T, sr) - 440.0) < 2.0
    assert res.format and res.sample_rate == 48000


def test_hostile_name_with_ffmpeg_fallback(tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    src_wav = synth.write(tmp_path / "t.wav", synth.tone(300.0, 1.2, sr=44100), 44100)
    weird = tmp_path / "-i ; rm -rf x $(echo) 'ü'.m4a"
    synth.encode_ffmpeg(src_wav, tmp_path / "t.m4a")
    (tmp_path / "t.m4a").rename(weird)
    res = ingest_file(weird, tmp_path / "o.wav")
    assert abs(res.duration_s - 1.2) < 0.06


def test_rejects_non_audio_empty_truncated(tmp_path):
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"this is not audio at all\n" * 100)
    with pytest.raises(BadAudioError, match="notes.wav"):
        ingest_file(junk, tmp_path / "o.wav")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    with pytest.raises(BadAudioError, match="empty"):
        ingest_file(empty, tmp_path / "o.wav")
    good = synth.write(tmp_path / "good.wav", synth.tone(220.0, 2.0), 44100)
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(good.read_bytes()[:40])  # header only, no samples
    with pytest.raises(BadAudioError):
        ingest_file(truncated, tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()


def test_truncated_data_keeps_what_is_there(tmp_path):
    good = synth.write(tmp_path / "good.wav", synth.tone(220.0, 4.0), 44100)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 2 * 44100 * 2])  # 2 s of the 4 s
    res = ingest_file(cut, tmp_path / "o.wav")
    assert 1.9 < res.duration_s < 2.1


def test_rejects_nan_silent_short_long(tmp_path):
    nan = synth.tone(220.0, 2.0)
    nan[1000] = np.nan
    src = synth.write(tmp_path / "nan.wav", nan, 44100, subtype="FLOAT")
    with pytest.raises(BadAudioError, match="NaN"):
        ingest_file(src, tmp_path / "o.wav")
    quiet = synth.write(tmp_path / "quiet.wav", synth.silence(3.0), 44100)
    with pytest.raises(BadAudioError, match="silent"):
        ingest_file(quiet, tmp_path / "o.wav")
    short = synth.write(tmp_path / "blip.wav", synth.tone(220.0, 0.3), 44100)
    with pytest.raises(BadAudioError, match="short"):
        ingest_file(short, tmp_path / "o.wav")
    long = synth.write(tmp_path / "long.wav", synth.tone(220.0, 12.0, sr=8000), 8000)
    with pytest.raises(BadAudioError, match="the limit is 10 s"):
        ingest_file(long, tmp_path / "o.wav", IngestParams(max_duration_s=10))


def test_display_name_in_messages(tmp_path):
    junk = tmp_path / "abc123"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BadAudioError, match="my song.mp3"):
        ingest_file(junk, tmp_path / "o.wav", display_name="my song.mp3")


def test_cancel_stops_before_writing(tmp_path):
    src = synth.write(tmp_path / "a.wav", synth.tone(220.0, 2.0), 44100)
    with pytest.raises(Cancelled):
        ingest_file(src, tmp_path / "o.wav", should_stop=lambda: True)
    assert not (tmp_path / "o.wav").exists()


def test_progress_reaches_one(tmp_path):
    src = synth.write(tmp_path / "a.wav", synth.tone(220.0, 2.0), 44100)
    seen: list[float] = []
    ingest_file(src, tmp_path / "o.wav", progress=lambda _s, f: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_probe_and_save_roundtrip(tmp_path):
    audio = np.stack([synth.tone(200.0, 1.0), synth.noise(1.0)])
    path = save_wav(tmp_path / "sub" / "x.wav", audio, 44100)
    info = probe(path)
    assert (info.sample_rate, info.channels, info.frames) == (44100, 2, 44100)
    back, sr = load_audio(path)
    assert sr == 44100 and np.array_equal(back, audio)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]  # no temp file left
    save_wav(tmp_path / "c.wav", audio * 4, 44100, subtype="PCM_16")  # clipped, not wrapped
    clipped, _ = load_audio(tmp_path / "c.wav")
    assert np.max(np.abs(clipped)) <= 1.0 and np.max(clipped) > 0.99


def test_dsp_helpers():
    x = synth.tone(440.0, 2.0, sr=48000, amp=0.1)
    y = resample(np.stack([x, x]), 48000, 44100)
    assert y.shape == (2, 88200)
    assert abs(dominant_hz(y, 44100) - 440.0) < 1.0
    assert to_channels(np.stack([x] * 6), 2).shape == (2, len(x))
    assert to_channels(x, 2).shape == (2, len(x))
    loud = normalize_loudness(x, 48000, -14.0)
    assert abs(loudness_lufs(loud, 48000) - (-14.0)) < 0.2
    capped = normalize_loudness(x, 48000, 0.0, max_peak_dbfs=-1.0)
    assert abs(peak_dbfs(capped) - (-1.0)) < 0.01
    assert loudness_lufs(synth.silence(1.0, 48000), 48000) <= -100
