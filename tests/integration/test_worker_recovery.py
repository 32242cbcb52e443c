"""A worker killed with SIGKILL mid-job: the watchdog notices the stale heartbeat, a new
worker resumes the job from its last checkpoint (tracks already ingested are not redone),
and the job finishes. Also: a job queued while no worker runs can be cancelled."""

from __future__ import annotations

import time

from tests.common.audio_files import song
from tests.common.stack import new_voice, upload, wait_job


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


def test_sigkill_during_training_resumes_from_the_last_checkpoint(stack, tmp_path):
    from tests.common import synth

    _, vocals, _ = synth.sung_song(7.0, base_f0=247.0, seed=4)
    ref = synth.write(tmp_path / "take.wav", vocals, 44100)
    with stack.client("alice") as c:
        v = new_voice(c, "Stubborn")
        r = upload(c, v["id"], [ref], vocals_only=True)
        wait_job(c, r.json()["job"]["id"])
        r = c.post(
            f"/api/v1/voices/{v['id']}/train",
            json={
                "config": "tiny",
                "max_steps": 150,
                "f0_method": "harvest",
                "ppg_model": stack.assets["ppg_model"],
                "vec_model": stack.assets["vec_model"],
            },
        )
        job_id = r.json()["id"]
        deadline = time.monotonic() + 180
        while True:  # the tiny config saves every 10 steps: kill after a few checkpoints
            job = c.get(f"/api/v1/jobs/{job_id}").json()
            step = ((job.get("metrics") or {}).get("train") or {}).get("step") or 0
            if job["stage"] == "train" and step >= 30:
                break
            assert job["status"] in ("queued", "running"), job
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        stack.kill_worker(stack.workers[-1])
        stack.start_worker()
        job = wait_job(c, job_id, timeout=240)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2  # the train stage ran twice: killed, then resumed
        train = job["metrics"]["train"]
        assert train["resumed_from_step"] >= 20 and train["step"] == 150, train
        curve_steps = [p["step"] for p in job["metrics"]["curve"]]
        assert curve_steps == sorted(curve_steps) and curve_steps[-1] == 150


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
