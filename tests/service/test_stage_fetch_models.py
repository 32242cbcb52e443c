"""The model download stage on real databases, from a local HTTP mirror (SVC_MODELS_MIRROR):
a file without a published hash is installed and its hash recorded; a file that is not the
published one fails the job in plain words and installs nothing; a cancel mid-download stops
it between chunks and leaves no partial file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.core import jobstate
from app.core.db import crud
from app.core.db.models import Job
from svc_core import assets
from tests.common.mirror import models_mirror
from worker.jobs.runner import run_stage


@pytest.fixture()
def mirror():
    with models_mirror() as m:
        yield m


@pytest.fixture()
def models_rt(rt, tmp_path, mirror):
    rt.settings = rt.settings.model_copy(
        update={"models_dir": tmp_path / "models", "models_mirror": mirror.url}
    )
    return rt


def _job(rt, names: list[str]) -> str:
    with rt.scope() as s:
        user = crud.create_user(s, name=f"fetch-{time.monotonic_ns()}")
        job = jobstate.create(
            s,
            user_id=user.id,
            kind="model_download",
            stages=["fetch_models"],
            params={"names": names},
        )
        return job.id


def _outcome(rt, job_id: str) -> tuple[str, str | None, str | None]:
    with rt.scope() as s:
        job = s.get(Job, job_id)
        return job.status, job.error, job.message


def test_a_file_without_a_published_hash_is_installed_and_recorded(models_rt, mirror):
    m = mirror
    m.files["download_checks.json"] = b'{"mdx_download_list": {}}'
    job_id = _job(models_rt, ["uvr-download-checks"])
    assert run_stage(models_rt, job_id=job_id, stage="fetch_models") == "succeeded"
    status, error, message = _outcome(models_rt, job_id)
    assert status == "succeeded" and error is None and message == "done"
    asset = assets.get_asset("uvr-download-checks")
    assert assets.quick_check(asset, models_rt.settings.models_dir)[0] == "recorded"


def test_a_file_that_is_not_the_published_one_installs_nothing(models_rt, mirror):
    m = mirror
    m.files["hubert-soft-0d54a1f4.pt"] = b"something else entirely" * 100
    job_id = _job(models_rt, ["hubert-soft"])
    assert run_stage(models_rt, job_id=job_id, stage="fetch_models") == "failed"
    status, error, _ = _outcome(models_rt, job_id)
    assert (
        status == "failed" and "not the expected file" in error and "nothing was installed" in error
    )
    assert list(Path(models_rt.settings.models_dir).glob("hubert*")) == []
    # and a file the mirror does not have: the download's error, in words
    job_id = _job(models_rt, ["rmvpe"])
    assert run_stage(models_rt, job_id=job_id, stage="fetch_models") == "failed"
    assert "HTTP 404" in _outcome(models_rt, job_id)[1]


def test_a_cancel_stops_the_download_and_keeps_no_partial_file(models_rt, mirror):
    m = mirror
    m.files["mdx_model_data.json"] = b"x" * (4 << 20)  # 64 chunks of 64 KiB, 0.05 s apart
    m.slow.add("mdx_model_data.json")
    job_id = _job(models_rt, ["uvr-mdx-model-data"])

    def cancel_once_started():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with models_rt.scope() as s:
                job = s.get(Job, job_id)
                if job.status == "running" and (job.progress or 0) > 0.05:
                    jobstate.request_cancel(s, job_id=job_id)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=cancel_once_started)
    t.start()
    t0 = time.monotonic()
    outcome = run_stage(models_rt, job_id=job_id, stage="fetch_models")
    t.join()
    assert outcome == "cancelled" and time.monotonic() - t0 < 3.0  # not the whole 3.2 s
    assert _outcome(models_rt, job_id)[0] == "cancelled"
    left = sorted(p.name for p in Path(models_rt.settings.models_dir).iterdir())
    assert not [n for n in left if n.startswith("mdx_model_data") or n.endswith(".part")], left
