"""A worker killed with SIGKILL mid-job: the watchdog notices the stale heartbeat, a new
worker resumes the job from its last checkpoint (tracks already ingested are not redone),
and the job finishes. Also: a job queued while no worker runs can be cancelled."""

from __future__ import annotations

import time

import pytest

from tests.integration.audio_files import song
from tests.integration.stack import wait_job
from tests.integration.test_api import new_voice, upload

pytestmark = pytest.mark.integration


def test_sigkill_worker_mid_job_then_new_worker_finishes_it(stack, tmp_path):
    files = [
        song(tmp_path / f"k{i}.wav", seconds=40, sr=48000, channels=2, f0=200 + 10 * i)
        for i in range(10)
    ]
    with stack.client("alice") as c:
        v = new_voice(c, "Killed")
        r = upload(c, v["id"], files)
        assert r.status_code == 201, r.text
        job_id = r.json()["job"]["id"]
        # wait until at least one track is done but not all: the job is mid-way
        deadline = time.monotonic() + 120
        while True:
            job = c.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] == "running" and job["stage_progress"] >= 0.1:
                break
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline
            time.sleep(0.02)
        stack.kill_worker(stack.workers[-1])
        before = {t["id"]: t for t in c.get(f"/api/v1/voices/{v['id']}/tracks").json()}
        done_before = {i for i, t in before.items() if t["status"] == "ready"}
        assert 0 < len(done_before) < len(files), "kill must land mid-job"
        assert c.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running"

        stack.start_worker()
        job = wait_job(c, job_id, timeout=180)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        after = {t["id"]: t for t in c.get(f"/api/v1/voices/{v['id']}/tracks").json()}
        assert all(t["status"] == "ready" for t in after.values())
        # resumed, not restarted: tracks finished before the kill were not decoded again
        for tid in done_before:
            assert after[tid]["ingested_at"] == before[tid]["ingested_at"]
        arts = c.get(f"/api/v1/jobs/{job_id}/artifacts").json()
        assert len(arts) == len(files)


def test_job_queued_without_worker_can_be_cancelled(stack, tmp_path):
    with stack.client("alice") as c:
        v = new_voice(c, "Queued")
        for w in stack.workers:
            if w.poll() is None:
                stack.kill_worker(w)
        r = upload(c, v["id"], [song(tmp_path / "q.wav", 1.5)])
        job_id = r.json()["job"]["id"]
        time.sleep(1.0)
        assert c.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued"
        r = c.post(f"/api/v1/jobs/{job_id}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        stack.start_worker()
        stack.wait_for_worker()
        # the message is still delivered; the worker must not run the cancelled job
        r2 = upload(c, v["id"], [song(tmp_path / "q2.wav", 1.5)])
        assert wait_job(c, r2.json()["job"]["id"])["status"] == "succeeded"
        job = c.get(f"/api/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and job["attempts"] == 0
