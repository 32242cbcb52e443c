"""The models page's API in-process (SQLite): the registry with each model's state, imports
checked like `svc-studio assets import`, downloads queued as jobs. (Downloads themselves run
on a real worker from a local mirror in tests/browser: the models page.)"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.cli import upgrade_db
from app.core.config import Settings
from app.core.db import crud
from app.core.db.models import Job
from app.core.db.session import session_scope
from svc_core import assets


@pytest.fixture()
def client(tmp_path):
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    upgrade_db(url)
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        database_url=url,
        broker_url="filesystem://",
        serve_ui=False,
    )
    app = create_app(settings)
    with session_scope(url) as s:
        user = crud.create_user(s, name="mo")
        token = crud.create_token(s, user=user, pepper=settings.token_pepper)
    c = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    c.settings = settings  # type: ignore[attr-defined]
    return c


def states(c) -> dict[str, str]:
    return {m["name"]: m["state"] for m in c.get("/api/v1/models").json()["models"]}


def test_the_listing_is_the_registry_with_states_and_presets(client):
    body = client.get("/api/v1/models").json()
    assert [m["name"] for m in body["models"]] == [a.name for a in assets.list_assets()]
    assert set(states(client).values()) == {"missing"}
    [preset] = [p for p in body["presets"] if p["name"] == "sovits5"]
    assert preset["missing"] == list(assets.PRESETS["sovits5"])
    # a file placed by hand is installed but unverified until hashed
    models = client.settings.models_dir
    models.mkdir(parents=True)
    (models / "download_checks.json").write_text("{}")
    assert states(client)["uvr-download-checks"] == "unverified"
    verified = client.get("/api/v1/models", params={"verify": "true"}).json()["models"]
    assert {m["name"]: m["state"] for m in verified}["uvr-download-checks"] == "unverified"


def test_import_checks_the_published_hash_and_records_the_rest(client, tmp_path):
    bad = client.post(
        "/api/v1/models/hubert-soft/import",
        files={
            "file": ("hubert.pt", b"not the published weights" * 10, "application/octet-stream")
        },
    )
    assert bad.status_code == 400 and "nothing was imported" in bad.json()["detail"]
    assert states(client)["hubert-soft"] == "missing"  # nothing was installed
    data = json.dumps({"models": {}}).encode()
    ok = client.post(
        "/api/v1/models/uvr-vr-model-data/import",
        files={"file": ("vr.json", data, "application/json")},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "recorded" and ok.json()["installed"]
    assert (client.settings.models_dir / "vr_model_data.json").read_bytes() == data
    assert states(client)["uvr-vr-model-data"] == "recorded"
    assert client.post("/api/v1/models/nope/import", files={"file": ("x", b"x")}).status_code == 404
    assert client.post("/api/v1/models/uvr-vr-model-data/import", data={"a": "b"}).status_code in (
        400,
        413,
    )


def test_a_download_is_a_job_with_the_names_resolved(client):
    r = client.post("/api/v1/models/download", json={"preset": "sovits5", "names": ["rmvpe"]})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "model_download" and job["stages"] == ["fetch_models"]
    with session_scope(client.settings.database_url) as s:
        row = s.get(Job, job["id"])
        assert row.params["names"] == ["rmvpe", *assets.PRESETS["sovits5"]]
    assert client.post("/api/v1/models/download", json={"names": ["nope"]}).status_code == 400
    assert client.post("/api/v1/models/download", json={}).status_code == 400


def test_the_preflight_points_to_the_models_page(client):
    v = client.post("/api/v1/voices", json={"name": "v"}).json()
    with session_scope(client.settings.database_url) as s:
        from app.core.db.models import Track, TrackRole, TrackStatus

        s.add(
            Track(
                user_id=crud.get_user_by_name(s, name="mo").id,
                voice_id=v["id"],
                role=TrackRole.reference,
                status=TrackStatus.ready,
                filename="a.wav",
                content_type="audio/wav",
                size_bytes=1,
                sha256="0" * 64,
                storage_key="k",
            )
        )
    r = client.post(f"/api/v1/voices/{v['id']}/train", json={"config": "tiny"})
    assert r.status_code == 409 and "Models page" in r.json()["detail"], r.text


def test_a_voice_import_has_its_own_larger_size_limit(tmp_path):
    """A voice package carries its retrieval index (hundreds of MB for half an hour of
    singing): its import may be larger than a song upload, up to its own limit."""
    import io
    import os
    import zipfile

    url = f"sqlite:///{tmp_path / 'svc.db'}"
    upgrade_db(url)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        broker_url="filesystem://",
        serve_ui=False,
        max_upload_bytes=1 << 20,
        max_voice_upload_bytes=4 << 20,
    )
    with session_scope(url) as s:
        user = crud.create_user(s, name="vi")
        token = crud.create_token(s, user=user, pepper=settings.token_pepper)
    c = TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"})

    def package(size: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("voice.json", json.dumps({"format": "svc-studio/voice", "version": 2}))
            z.writestr("retrieval.svcindex", os.urandom(size), zipfile.ZIP_STORED)
        return buf.getvalue()

    ok = c.post(
        "/api/v1/voices/import",
        data={"name": "Big"},
        files={"files": ("big.svcvoice.zip", package(2 << 20), "application/zip")},
    )
    assert ok.status_code == 201, ok.text
    over = c.post(
        "/api/v1/voices/import",
        data={"name": "Too big"},
        files={"files": ("huge.svcvoice.zip", package(5 << 20), "application/zip")},
    )
    assert over.status_code == 413 and "limit" in over.json()["detail"]
    voice = c.post("/api/v1/voices", json={"name": "Songs"}).json()
    song = c.post(
        f"/api/v1/voices/{voice['id']}/tracks",
        files={"files": ("long.wav", b"RIFF\x00\x00\x00\x00WAVE" + bytes(2 << 20), "audio/wav")},
    )
    assert song.status_code == 413  # songs keep the smaller limit
