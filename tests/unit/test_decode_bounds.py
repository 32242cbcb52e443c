"""Decoding is bounded before it happens (issue 13, item 2).

Hostile files from the outside probe: an 8-channel FLAC of 1190 s of a constant (461 KiB on
disk, 1.8 GiB decoded at its own rate), a 384 kHz file, and headers that claim 10⁹ frames.
Each either fails with a message naming the limit, or is ingested with the worker's memory
bounded, measured as the peak RSS of a fresh interpreter (``ru_maxrss``) over its baseline
after a warm-up ingest. Also: the block-wise resampling, down-mixing and loudness equal the
whole-file computations they replace.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svc_core.audio import io as audio_io
from svc_core.audio.dsp import (
    LoudnessMeter,
    StreamResampler,
    loudness_lufs,
    resample,
    to_channels,
)
from svc_core.audio.io import AudioInfo, load_audio, probe
from svc_core.errors import BadAudioError
from svc_core.ingest import IngestParams, ingest_file
from tests.common import synth

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

# Runs in a fresh interpreter: a warm-up ingest of a small file of the same kind (every library
# and codec loaded), then the file under test; prints the memory peaks (KiB) and the outcome.
# The peak is VmHWM, the high-water mark of this process's own memory: ru_maxrss would start
# at the parent's size (Linux carries it over exec), i.e. at pytest's, which hides growth.
_MEASURE = """
import json, resource, sys
from svc_core.errors import SvcError
from svc_core.ingest import IngestParams, ingest_file

def hwm_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

warm, src, out, kwargs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
ingest_file(warm, out)
base = hwm_kib()
try:
    result, error = ingest_file(src, out, IngestParams(**kwargs)).to_dict(), None
except SvcError as exc:
    result, error = None, str(exc)
print(json.dumps({
    "base_kib": base,
    "peak_kib": hwm_kib(),
    # ffmpeg, if it ran (an upper bound: a child's figure starts at this process's size)
    "children_peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "result": result,
    "error": error,
}, default=float))
"""


def _measure_ingest(tmp_path: Path, src: Path, warm: Path, **params) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            str(warm),
            str(src),
            str(tmp_path / "o.wav"),
            json.dumps(params),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["delta_bytes"] = (out["peak_kib"] - out["base_kib"]) * 1024
    print(f"{src.name}: peak {out['base_kib'] // 1024} MiB -> {out['peak_kib'] // 1024} MiB")
    return out


def _constant_flac(path: Path, sr: int, channels: int, seconds: float) -> Path:
    """A FLAC of the constant 0.25 (FLAC makes 20 minutes of it a few hundred KiB); written
    as int16 blocks, the fastest way through libsndfile."""
    block = np.full((sr * 10, channels), 8192, np.int16)
    total = int(sr * seconds)
    with sf.SoundFile(str(path), "w", sr, channels, subtype="PCM_16", format="FLAC") as f:
        done = 0
        while done < total:
            n = min(len(block), total - done)
            f.write(block[:n])
            done += n
    return path


def _forge_flac_frames(src: Path, dst: Path, frames: int) -> Path:
    """Copy of a FLAC whose STREAMINFO claims ``frames`` samples (36-bit field)."""
    b = bytearray(src.read_bytes())
    assert b[:4] == b"fLaC" and b[4] & 0x7F == 0  # STREAMINFO is the first block
    v = int.from_bytes(b[18:26], "big")
    v = (v & ~((1 << 36) - 1)) | frames
    b[18:26] = v.to_bytes(8, "big")
    dst.write_bytes(bytes(b))
    return dst


@pytest.fixture(scope="module")
def probe_flac(tmp_path_factory) -> Path:
    """The probe's file: 48 kHz, 8 channels, 1190 s of a constant, 461 KiB."""
    return _constant_flac(tmp_path_factory.mktemp("hostile") / "const8.flac", 48000, 8, 1190)


@pytest.fixture(scope="module")
def warm_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("warm") / "warm.wav"
    return synth.write(path, np.stack([synth.tone(220.0, 2.0, sr=48000)] * 2), 48000)


def test_eight_channel_flac_of_1190_s_ingests_in_bounded_memory(tmp_path, probe_flac, warm_wav):
    assert probe_flac.stat().st_size < 600 * 1024
    info = probe(probe_flac)
    assert (info.channels, info.sample_rate, info.frames) == (8, 48000, 1190 * 48000)
    assert info.frames * info.channels * 4 > 1.7 * GIB  # what decoding it whole used to hold
    m = _measure_ingest(tmp_path, probe_flac, warm_wav)
    assert m["error"] is None, m["error"]
    res = m["result"]
    assert res["duration_s"] == 1190.0 and res["channels"] == 8
    assert (res["output_channels"], res["output_sample_rate"]) == (2, 44100)
    assert abs(res["peak_dbfs"] - 20 * np.log10(0.25)) < 0.01
    assert sf.info(str(tmp_path / "o.wav")).frames == 1190 * 44100
    # measured: +14 MiB (it was +3.9 GiB when the file was decoded whole)
    assert m["delta_bytes"] < GIB, m


def test_384_khz_is_refused_from_the_header(tmp_path, warm_wav):
    src = _constant_flac(tmp_path / "hires.flac", 384000, 8, 2.0)
    with pytest.raises(BadAudioError, match=r"384000 Hz; the limit is 192000 Hz"):
        ingest_file(src, tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()
    m = _measure_ingest(tmp_path, src, warm_wav)
    assert "the limit is 192000 Hz" in m["error"] and m["delta_bytes"] < GIB
    # the limit is a parameter: raised, the same file is streamed through
    res = ingest_file(src, tmp_path / "o.wav", IngestParams(max_sample_rate=384000))
    assert res.sample_rate == 384000 and abs(res.duration_s - 2.0) < 1e-3
    # load_audio takes the same limit
    with pytest.raises(BadAudioError, match="the limit is 192000 Hz"):
        load_audio(src, max_sample_rate=192000)


def test_flac_header_claiming_1e9_frames_is_refused(tmp_path, warm_wav):
    small = synth.write(tmp_path / "small.flac", synth.tone(300.0, 2.0, sr=48000), 48000)
    forged = _forge_flac_frames(small, tmp_path / "forged.flac", 10**9)
    assert probe(forged).frames == 10**9
    with pytest.raises(BadAudioError, match=r"is 20833 s long; the limit is 1200 s"):
        ingest_file(forged, tmp_path / "o.wav")
    m = _measure_ingest(tmp_path, forged, warm_wav)
    assert "the limit is 1200 s" in m["error"] and m["delta_bytes"] < GIB
    # without a duration limit, load_audio refuses the size the header claims (4 GB as float)
    with pytest.raises(BadAudioError, match=r"3\.7 GiB decoded.*the limit for a decoded file"):
        load_audio(forged)


def test_flac_header_overstating_its_length_decodes_what_is_there(tmp_path):
    """soundfile trusts the claimed 600 s and fails at the real end: ffmpeg decodes it again
    from the start into a fresh output (nothing of the first attempt is kept)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    small = synth.write(tmp_path / "small.flac", synth.tone(300.0, 2.0, sr=48000), 48000)
    forged = _forge_flac_frames(small, tmp_path / "forged.flac", 600 * 48000)
    res = ingest_file(forged, tmp_path / "o.wav")
    assert abs(res.duration_s - 2.0) < 1e-3
    assert sf.info(str(tmp_path / "o.wav")).frames == 2 * 44100
    audio, sr = load_audio(forged)
    ref, _ = sf.read(str(small), dtype="float32", always_2d=True)
    assert sr == 48000 and np.array_equal(audio, ref.T)


def test_wav_header_claiming_1e9_frames_is_read_for_what_it_holds(tmp_path, warm_wav):
    sr = 48000
    pcm = (synth.tone(300.0, 2.0, sr=sr, amp=0.5) * 32767).astype("<i2").tobytes()
    claimed = 10**9 * 2  # bytes of 10⁹ mono 16-bit frames, beyond what RIFF sizes can say
    size = min(claimed, 0xFFFFFFFF - 36)
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size)
    )
    src = tmp_path / "huge.wav"
    src.write_bytes(header + pcm)
    m = _measure_ingest(tmp_path, src, warm_wav)
    assert m["error"] is None and abs(m["result"]["duration_s"] - 2.0) < 1e-3
    assert m["delta_bytes"] < GIB


@needs_ffmpeg
def test_ffmpeg_path_streams_with_memory_bounded(tmp_path, probe_flac, warm_wav):
    """A container soundfile cannot open (FLAC in Matroska) goes through ffmpeg, whose output
    is read from the pipe block by block instead of collected whole."""
    mka = tmp_path / "const8.mka"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(probe_flac),
            "-t",
            "600",
            "-c:a",
            "copy",
            str(mka),
        ],
        check=True,
    )
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(mka))
    warm_mka = tmp_path / "warm.mka"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(warm_wav), "-c:a", "flac", str(warm_mka)],
        check=True,
    )
    m = _measure_ingest(tmp_path, mka, warm_mka)
    assert m["error"] is None, m["error"]
    assert abs(m["result"]["duration_s"] - 600.0) < 0.1
    # 600 s of 8 channels is 0.9 GiB as float32, held twice when ffmpeg's output was collected
    # whole; streamed, the worker grows by a few MiB and ffmpeg itself stays small
    assert m["delta_bytes"] < GIB // 2, m
    assert m["children_peak_kib"] * 1024 < GIB, m


def _understated(real: AudioInfo, seconds: float) -> AudioInfo:
    frames = int(seconds * real.sample_rate)
    return AudioInfo(real.format, real.subtype, real.sample_rate, real.channels, frames, seconds)


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_a_header_understating_the_length_is_caught_while_decoding(tmp_path, monkeypatch, ext):
    if ext != "wav" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    wav = synth.write(tmp_path / "long.wav", synth.tone(220.0, 14.0, sr=8000), 8000)
    src = wav if ext == "wav" else synth.encode_ffmpeg(wav, tmp_path / "long.m4a")
    real = probe(src)
    monkeypatch.setattr("svc_core.ingest.probe", lambda _p: _understated(real, 5.0))
    with pytest.raises(BadAudioError, match=r"longer than its header says.*the limit is 10 s"):
        ingest_file(src, tmp_path / "o.wav", IngestParams(max_duration_s=10))
    assert not (tmp_path / "o.wav").exists()
    monkeypatch.setattr(audio_io, "probe", lambda _p: _understated(real, 5.0))
    with pytest.raises(BadAudioError, match="the limit is 10 s"):
        load_audio(src, max_duration_s=10)


def test_load_audio_grows_past_an_understating_header_up_to_its_byte_limit(tmp_path, monkeypatch):
    audio = np.stack([synth.tone(220.0, 3.0), synth.noise(3.0)])
    src = audio_io.save_wav(tmp_path / "a.wav", audio, 44100)
    real = probe(src)
    monkeypatch.setattr(audio_io, "probe", lambda _p: _understated(real, 0.5))
    back, sr = load_audio(src)
    assert sr == 44100 and back.flags.c_contiguous and np.array_equal(back, audio)
    with pytest.raises(
        BadAudioError, match="decodes to more than its header says.*the limit for a decoded file is"
    ):
        load_audio(src, max_bytes=2 * 44100 * 2 * 4)  # 2 s of stereo float


def test_load_audio_refuses_a_result_above_its_byte_limit_from_the_header(tmp_path):
    src = synth.write(tmp_path / "a.wav", np.stack([synth.tone(220.0, 3.0)] * 2), 44100)
    with pytest.raises(BadAudioError, match="the limit for a decoded file is"):
        load_audio(src, max_bytes=44100 * 2 * 4)
    # the limit counts the result: down-mixed and resampled it fits
    mono, sr = load_audio(src, max_bytes=3 * 16000 * 4 + 4096, channels=1, sample_rate=16000)
    assert sr == 16000 and mono.shape == (1, 48000)


@pytest.mark.parametrize("block", [997, 4096, 1 << 16])
@pytest.mark.parametrize(
    ("sr", "channels", "seconds"),
    [(48000, 2, 7.31), (44100, 1, 0.3), (44100, 2, 0.4), (8000, 1, 0.46), (22050, 2, 1.0)],
)
def test_loudness_meter_equals_loudness_lufs(sr, channels, seconds, block):
    rng = np.random.default_rng(3)
    n = int(sr * seconds)
    x = (rng.standard_normal((channels, n)) * np.linspace(0.01, 0.3, n)).astype(np.float32)
    meter = LoudnessMeter(sr, channels)
    for i in range(0, n, block):
        meter.feed(x[:, i : i + block])
    assert meter.value() == loudness_lufs(x, sr)


def test_loudness_meter_of_silence():
    meter = LoudnessMeter(48000, 2)
    meter.feed(np.zeros((2, 48000 * 2), np.float32))
    assert meter.value() == loudness_lufs(np.zeros((2, 96000), np.float32), 48000) <= -100


@pytest.mark.parametrize(("sr_in", "channels"), [(48000, 2), (8000, 1), (192000, 2), (44100, 2)])
def test_stream_resampler_equals_resample(sr_in, channels):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((channels, int(sr_in * 2.3) + 7)) * 0.2).astype(np.float32)
    rs = StreamResampler(sr_in, 44100, channels)
    parts = [rs.process(x[:, i : i + 65536]) for i in range(0, x.shape[1], 65536)]
    y = np.concatenate([*parts, rs.flush()], axis=1)
    assert np.array_equal(y, resample(x, sr_in, 44100))


@pytest.mark.parametrize(("sr", "channels"), [(48000, 1), (48000, 2), (22050, 6), (44100, 2)])
def test_load_audio_reformats_like_the_whole_file_path(tmp_path, sr, channels):
    """``load_audio(sample_rate=, channels=)`` (block-wise) against decoding whole and then
    ``resample`` + ``to_channels`` (what separation did): equal for mono and stereo; for more
    channels the down-mix now comes before resampling (a float rounding apart)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((channels, int(sr * 3.1))) * 0.2).astype(np.float32)
    src = synth.write(tmp_path / "x.wav", x, sr, subtype="FLOAT")
    whole, _ = load_audio(src)
    ref = to_channels(resample(whole, sr, 44100), 2)
    got, out_sr = load_audio(src, sample_rate=44100, channels=2)
    assert out_sr == 44100 and got.shape == ref.shape and got.flags.c_contiguous
    if channels <= 2:
        assert np.array_equal(got, ref)
    else:
        assert np.max(np.abs(got - ref)) < 1e-6
