"""A Python client generated from the live OpenAPI spec (openapi-python-client) runs the
journey on its own: create a voice, upload references, train the tiny config, upload a
source song, convert it by track id with typed options, poll to the end, download the mix;
and a repeated submission with an Idempotency-Key gives the same job back. If the generator
cannot type a route, the route's documentation is what changes, not this test."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.common import synth

PACKAGE = "svc_generated_client"


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory):
    """The generated package, imported from a fresh folder."""
    import httpx

    out = tmp_path_factory.mktemp("client")
    spec = out / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{stack.url}/api/v1/openapi.json").json()))
    gen = Path(sys.executable).parent / "openapi-python-client"
    res = subprocess.run(
        [str(gen), "generate", "--path", str(spec), "--meta", "none"]
        + ["--output-path", str(out / PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        # its post-generation hooks run ruff, from this environment
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Unsupported" not in res.stdout + res.stderr, res.stdout + res.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _op(api, group: str, name: str):
    """An operation module of the generated client, found by its function-name prefix."""
    pkg = importlib.import_module(f"{api.__name__}.api.{group}")
    (module,) = [p.stem for p in Path(pkg.__file__).parent.glob(f"{name}_api_v1_*.py")]
    return importlib.import_module(f"{pkg.__name__}.{module}")


def _wav(path: Path, seconds: float, f0: float, seed: int) -> bytes:
    mix, _, _ = synth.sung_song(seconds, base_f0=f0, seed=seed)
    return synth.write(path, mix, 44100).read_bytes()


def _wait(api, client, job_id: str, timeout: float = 300):
    get_job = _op(api, "jobs", "get_job")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job.sync(job_id, client=client)
        if job.status.value in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {job.status}")


@pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True)
def test_the_generated_client_runs_the_journey(stack, api, tmp_path):
    from importlib import import_module

    models = import_module(f"{api.__name__}.models")
    types = import_module(f"{api.__name__}.types")
    client = api.AuthenticatedClient(
        base_url=stack.url, token=stack.tokens["alice"], raise_on_unexpected_status=True
    )

    voice = _op(api, "voices", "create_voice").sync(
        client=client, body=models.VoiceCreate(name="Generated")
    )
    refs = [
        types.File(
            payload=io.BytesIO(_wav(tmp_path / f"r{i}.wav", 7.0, f0, i)), file_name=f"r{i}.wav"
        )
        for i, f0 in enumerate((262.0, 294.0))
    ]
    up = _op(api, "voices", "upload_tracks").sync(
        voice.id,
        client=client,
        body=models.UploadTracksApiV1VoicesVoiceIdTracksPostBody(files=refs),
    )
    assert _wait(api, client, up.job.id).status == models.JobStatus.SUCCEEDED

    train = _op(api, "voices", "train_voice")
    body = models.TrainRequest(
        config=models.TrainRequestConfig.TINY,
        max_steps=8,
        f0_method=models.TrainRequestF0MethodType0.HARVEST,
        ppg_model=stack.assets["ppg_model"],
        vec_model=stack.assets["vec_model"],
    )
    first = train.sync_detailed(voice.id, client=client, body=body, idempotency_key="gen-train")
    again = train.sync_detailed(voice.id, client=client, body=body, idempotency_key="gen-train")
    assert first.status_code == again.status_code == 202
    assert first.parsed.id == again.parsed.id
    assert again.headers.get("idempotent-replayed") == "true"
    trained = _wait(api, client, first.parsed.id)
    assert trained.status == models.JobStatus.SUCCEEDED, trained.error

    source = types.File(
        payload=io.BytesIO(_wav(tmp_path / "s.wav", 5.0, 196.0, 9)), file_name="s.wav"
    )
    src = _op(api, "tracks", "upload_source_tracks").sync(
        client=client, body=models.UploadSourceTracksApiV1TracksPostBody(files=[source])
    )
    assert _wait(api, client, src.job.id).status == models.JobStatus.SUCCEEDED
    options = models.ConversionOptions(
        transpose="auto",
        output_format=models.ConversionOptionsOutputFormat.WAV24,
        retrieval_ratio=0.5,
    )
    (conv,) = _op(api, "conversions", "create_conversions").sync(
        client=client,
        body=models.ConversionRequest(
            voice_id=voice.id, track_ids=[src.tracks[0].id], options=options
        ),
        idempotency_key="gen-convert",
    )
    assert conv.source_track.id == src.tracks[0].id
    job = _wait(api, client, conv.job.id)
    assert job.status == models.JobStatus.SUCCEEDED, job.error

    got = _op(api, "conversions", "get_conversion").sync(conv.id, client=client)
    (mix,) = [a for a in got.artifacts if a.kind == models.ArtifactKind.MIX]
    download = _op(api, "artifacts", "download_artifact").sync_detailed(mix.id, client=client)
    assert download.status_code == 200
    audio, sr = sf.read(io.BytesIO(download.content), always_2d=True)
    assert sr == 44100 and audio.shape[1] == 2 and len(audio) > 4 * 44100
    assert sf.info(io.BytesIO(download.content)).subtype == "PCM_24"
