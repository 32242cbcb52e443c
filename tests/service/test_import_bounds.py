"""The import stage on real databases with hostile uploads: each fails its job with a plain
message (never "Internal error"), stores nothing, and the same worker then imports a real
voice, whose stored report is the package's (checked) histogram."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from app.core import jobstate, keys
from app.core.db import crud
from app.core.db.models import Artifact, Job, Voice
from app.core.params import VoiceImportParams, job_params
from worker.jobs.runner import run_stage

MiB = 1 << 20
GOOD_META = {
    "features": {"f0_method": "fcpe", "ppg_model": "whisper-tiny", "vec_model": "hubert-soft"},
    "pitch_histogram": [{"midi": 60, "note": "C4", "seconds": 4.5, "share": 1.0}],
    "pitch_hop_s": 0.01,
    "train": {"step": 2, "starts_from": "scratch"},
}


# (tests share helpers only through tests/common: these few lines are repeated from
# tests/unit/test_import_bounds.py, which says more about them)
def deflated_zeros(total: int) -> bytes:
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(MiB)) + co.flush(zlib.Z_FULL_FLUSH)
    return block * (total // MiB) + co.flush()


def raw_zip(path: Path, members: list[tuple]) -> Path:
    """A zip whose directory says what ``(name, data, method, crc, file_size)`` say."""
    out, cd = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        n, off = name.encode(), len(out)
        head = (0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(n), 0)
        out += struct.pack("<IHHHHHIIIHH", *head) + n + data
        entry = (0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size, len(n), 0, 0, 0, 0)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", *entry, 0, off) + n
    end = (0x06054B50, 0, 0, len(members), len(members), len(cd), len(out), 0)
    path.write_bytes(bytes(out + cd + struct.pack("<IHHHHIIH", *end)))
    return path


def stored(name: str, data: bytes) -> tuple:
    return (name, data, 0, zlib.crc32(data), len(data))


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    from svc_core.model.builders import build_generator
    from svc_core.model.config import load_config
    from svc_core.train.package import write_voice_package

    cfg = load_config("tiny")
    torch.manual_seed(0)
    state = build_generator(cfg, inference_only=True).state_dict()
    spk = np.ones(cfg.model.spk_dim, np.float32)
    dest = tmp_path_factory.mktemp("svc") / "good.zip"
    return write_voice_package(dest, cfg, state, spk, {"meta": GOOD_META})


def _hostile(good: Path, tmp_path: Path) -> dict[str, Path]:
    parts = members_of(good)

    def replaced(name: str, entry: tuple) -> list[tuple]:
        return [entry if n == name else stored(n, d) for n, d in parts.items()]

    info = json.loads(parts["voice.json"])
    info["meta"] = {**GOOD_META, "pitch_histogram": [GOOD_META["pitch_histogram"][0]] * 5000}
    ws = parts["config.yaml"] + b" " * (40 * MiB)
    return {
        "bomb": raw_zip(
            tmp_path / "bomb.zip",
            replaced("generator.pt", ("generator.pt", deflated_zeros(2 << 30), 8, 0, 2 << 30)),
        ),
        "whitespace": raw_zip(
            tmp_path / "ws.zip",
            replaced("config.yaml", ("config.yaml", zlib.compress(ws)[2:-4], 8, 0, len(ws))),
        ),
        "traversal": raw_zip(
            tmp_path / "trav.zip",
            [*(stored(n, d) for n, d in parts.items()), stored("../../x.sh", b"echo")],
        ),
        "histogram": raw_zip(
            tmp_path / "hist.zip",
            replaced("voice.json", stored("voice.json", json.dumps(info).encode())),
        ),
        "garbage": _garbage_weights(parts, tmp_path),
    }


def _garbage_weights(parts: dict[str, bytes], tmp_path: Path) -> Path:
    out = tmp_path / "garbage.zip"
    with zipfile.ZipFile(out, "w") as z:
        for n, d in parts.items():
            z.writestr(n, b"\x80\x02garbage" * 50 if n == "generator.pt" else d)
    return out


def _import_job(rt, package: Path, tag: str, speaker: Path | None = None) -> tuple[str, str]:
    with rt.scope() as s:
        user = crud.create_user(s, name=f"importer-{tag}")
        voice = crud.create_voice(s, user_id=user.id, name=tag)
        key = keys.voice(user.id, voice.id, "import", "package.zip")
        rt.storage.put_file(key, package)
        params = VoiceImportParams(filename=f"{tag}.zip", sha256="0" * 64, storage_key=key)
        if speaker is not None:  # a 5.0 model and its speaker vector
            spk_key = keys.voice(user.id, voice.id, "import", "speaker.spk.npy")
            rt.storage.put_file(spk_key, speaker)
            params = VoiceImportParams(
                filename=f"{tag}.pth",
                sha256="0" * 64,
                storage_key=key,
                format="sovits5",
                speaker_key=spk_key,
            )
        job = jobstate.create(
            s,
            user_id=user.id,
            kind="voice_import",
            stages=["import_voice"],
            params=job_params("voice_import", params),
            voice_id=voice.id,
        )
        return job.id, voice.id


EXPECT = {
    "bomb": "generator.pt is 2 GiB uncompressed; at most 1 GiB",
    "whitespace": "config.yaml is 40 MiB uncompressed; at most 1 MiB",
    "traversal": "voice package traversal.zip holds a member with an unsafe name: '../../x.sh'",
    "histogram": "pitch histogram has 5000 bins",
    "garbage": "is damaged",
}


@pytest.mark.timeout(300)
def test_hostile_imports_fail_plainly_and_the_worker_goes_on(rt, good, tmp_path):
    for name, package in _hostile(good, tmp_path).items():
        job_id, voice_id = _import_job(rt, package, name)
        assert run_stage(rt, job_id=job_id, stage="import_voice") == "failed", name
        with rt.scope() as s:
            job = s.get(Job, job_id)
            voice = s.get(Voice, voice_id)
            assert job is not None and voice is not None
            assert "Internal error" not in job.error, (name, job.error)
            assert EXPECT[name] in job.error, (name, job.error)
            assert voice.report is None
            assert s.query(Artifact).filter(Artifact.voice_id == voice_id).count() == 0
    # a 5.0 model that is garbage, and one whose pickle would run code
    spk = tmp_path / "s.spk.npy"
    np.save(spk, np.ones(256, np.float32))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    job_id, _ = _import_job(rt, junk, "junk5", speaker=spk)
    assert run_stage(rt, job_id=job_id, stage="import_voice") == "failed"
    with rt.scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and "is not a readable model file" in job.error, job.error
        assert "Internal error" not in job.error
    # the same worker imports a real package; its report is the package's histogram
    job_id, voice_id = _import_job(rt, good, "good")
    assert run_stage(rt, job_id=job_id, stage="import_voice") == "succeeded"
    with rt.scope() as s:
        voice = s.get(Voice, voice_id)
        assert voice is not None and voice.report is not None
        assert voice.report["histogram"] == GOOD_META["pitch_histogram"]
        assert voice.settings["features"] == GOOD_META["features"]


def test_a_cancel_stops_the_import_before_anything_is_stored(rt, good, monkeypatch):
    from worker.jobs import runtime as rtm

    job_id, voice_id = _import_job(rt, good, "cancelled")
    calls = []

    def stop(self):  # a cancel that lands a few checks in: inside the package load
        calls.append(1)
        if len(calls) > 3:
            self._cancel = True
        return self._cancel

    monkeypatch.setattr(rtm.JobHandle, "should_stop", stop)
    assert run_stage(rt, job_id=job_id, stage="import_voice") == "cancelled"
    assert len(calls) <= 6  # it stopped at once, not at the end of the stage
    with rt.scope() as s:
        assert s.query(Artifact).filter(Artifact.voice_id == voice_id).count() == 0
        voice = s.get(Voice, voice_id)
        assert voice is not None and voice.report is None
        job = s.get(Job, job_id)
        assert job is not None and job.status == "cancelled"
