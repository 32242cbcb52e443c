"""The mix stage and the re-mix job on real databases: inputs from earlier stages' artifacts,
reuse of an identical mix, a new file for new settings, nothing half-written on cancel."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from app.core import jobstate
from app.core.db import crud
from app.core.db.models import Artifact, Conversion, Job, Track
from tests.common import synth
from worker.jobs.common import JobSnapshot, store_artifact
from worker.jobs.runner import run_stage

SR = 44100


def _setup(rt, tmp_path, *, transpose=12.0, with_instrumental=True):
    with rt.scope() as s:
        user = crud.create_user(s, name=f"mixer-{tmp_path.name}")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        track = Track(
            user_id=user.id,
            role="source",
            filename="My Song.mp3",
            size_bytes=1,
            sha256="0" * 64,
            storage_key="x",
            status="ready",
        )
        s.add(track)
        s.flush()
        conv = Conversion(
            user_id=user.id,
            voice_id=voice.id,
            source_track_id=track.id,
            options={"output_format": "wav16", "transpose_instrumental": True},
            report={"transpose": {"semitones": transpose}},
        )
        s.add(conv)
        s.flush()
        ids = user.id, voice.id, track.id, conv.id
    uid, vid, tid, cid = ids
    snap = JobSnapshot(
        id=None, user_id=uid, kind="conversion", params={}, voice_id=vid, conversion_id=cid
    )

    def put(kind, audio, sr, **owner):
        path = synth.write(tmp_path / f"{kind}.wav", audio, sr, "FLOAT")
        store_artifact(
            rt,
            job=snap,
            local_file=path,
            key=f"u/{uid}/test/{kind}.wav",
            kind=kind,
            stage="test",
            inputs=None,
            content_type="audio/wav",
            filename=f"{kind}.wav",
            **owner,
        )

    put("converted_vocals", synth.tone(300.0, 3.0, sr=32000, amp=0.2), 32000, conversion_id=cid)
    put("vocals", synth.tone(310.0, 3.0, amp=0.4), SR, track_id=tid)
    if with_instrumental:
        put("instrumental", np.stack([synth.tone(440.0, 3.0, amp=0.3)] * 2), SR, track_id=tid)
    return uid, cid


def _run_mix_job(rt, uid, cid, options=None, kind="remix"):
    with rt.scope() as s:
        job = jobstate.create(
            s,
            user_id=uid,
            kind=kind,
            stages=["mix"],
            params={"options": options or {}},
            conversion_id=cid,
        )
        job_id = job.id
    outcome = run_stage(rt, job_id=job_id, stage="mix")
    with rt.scope() as s:
        job = s.get(Job, job_id)
        return outcome, job.status, job.error


def _mixes(rt, cid):
    with rt.scope() as s:
        arts = s.query(Artifact).filter_by(conversion_id=cid, kind="mix").all()
        return [(a.storage_key, a.filename, a.meta) for a in arts]


def test_mix_stage_uses_artifacts_and_transposes_instrumental(rt, tmp_path):
    uid, cid = _setup(rt, tmp_path)
    assert _run_mix_job(rt, uid, cid) == ("succeeded", "succeeded", None)
    [(key, filename, meta)] = _mixes(rt, cid)
    assert filename == "My Song-mix.wav"
    audio, sr = sf.read(rt.storage.path(key), always_2d=True)
    assert sr == SR and audio.shape == (3 * SR, 2)
    spec = np.abs(np.fft.rfft(audio[SR // 2 : -SR // 2, 0]))
    peaks = np.argsort(spec)[-2:] * SR / (2 * SR)
    assert any(abs(p - 880.0) < 2 for p in peaks)  # the instrumental, up an octave
    assert meta["true_peak_dbtp"] <= -1.0
    # loudness of the converted vocals matched to the original vocals (+6 dB here)
    assert abs(meta["vocal_gain_applied_db"] - 20 * np.log10(0.4 / 0.2)) < 0.5
    with rt.scope() as s:
        assert s.get(Conversion, cid).report["mix"]["settings"]["transpose_instrumental"] == 12.0


def test_same_settings_reuse_new_settings_add_a_file(rt, tmp_path):
    uid, cid = _setup(rt, tmp_path, transpose=0.0)
    _run_mix_job(rt, uid, cid)
    _run_mix_job(rt, uid, cid)
    assert len(_mixes(rt, cid)) == 1
    assert _run_mix_job(rt, uid, cid, {"output_format": "mp3", "reverb": 0.3})[1] == "succeeded"
    mixes = _mixes(rt, cid)
    assert len(mixes) == 2 and {m[1] for m in mixes} == {
        "My Song-mix.wav",
        "My Song-mix-reverb30.mp3",
    }
    assert sf.info(rt.storage.path(mixes[-1][0])).format == "MP3"


def test_vocals_only_source_mixes_vocals_alone(rt, tmp_path):
    uid, cid = _setup(rt, tmp_path, with_instrumental=False)
    assert _run_mix_job(rt, uid, cid)[1] == "succeeded"
    [(key, _, meta)] = _mixes(rt, cid)
    assert meta["instrumental_lufs"] is None and sf.info(rt.storage.path(key)).frames == 3 * SR


def test_cancel_leaves_no_half_written_mix(rt, tmp_path, monkeypatch):
    uid, cid = _setup(rt, tmp_path)
    import worker.jobs.runtime as rtm

    monkeypatch.setattr(rtm.JobHandle, "should_stop", lambda self: True)
    monkeypatch.setattr(rtm.JobHandle, "cancel_requested", property(lambda self: True))
    outcome, status, error = _run_mix_job(rt, uid, cid)
    assert (outcome, status) == ("cancelled", "cancelled")
    assert _mixes(rt, cid) == []
    tmp = rt.storage.root / ".tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


def test_mix_without_converted_vocals_fails_plainly(rt, tmp_path):
    with rt.scope() as s:
        user = crud.create_user(s, name="nothing-yet")
        voice = crud.create_voice(s, user_id=user.id, name="v")
        track = Track(
            user_id=user.id,
            role="source",
            filename="a.wav",
            size_bytes=1,
            sha256="0" * 64,
            storage_key="x",
        )
        s.add(track)
        s.flush()
        conv = Conversion(user_id=user.id, voice_id=voice.id, source_track_id=track.id)
        s.add(conv)
        s.flush()
        uid, cid = user.id, conv.id
    outcome, status, error = _run_mix_job(rt, uid, cid)
    assert status == "failed" and "no converted vocals" in error


@pytest.mark.parametrize("fmt", ["aiff"])
def test_bad_format_fails_plainly(rt, tmp_path, fmt):
    uid, cid = _setup(rt, tmp_path)
    _, status, error = _run_mix_job(rt, uid, cid, {"output_format": fmt})
    assert status == "failed" and "output format" in error
