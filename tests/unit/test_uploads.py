"""The streaming multipart parser's limits and plain answers (app/api/uploads.py), through a
real ASGI app: bounded form fields, a part without a name, a body cut off before its end."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app.api.uploads import MAX_FIELDS, MAX_FIELDS_TOTAL_BYTES, parse_upload
from app.core.storage import LocalStorage
from tests.common.synth import tone, write

BOUNDARY = "svcboundary"


@pytest.fixture
def client(tmp_path):
    storage = LocalStorage(tmp_path / "storage")
    app = FastAPI()

    @app.post("/up")
    async def up(request: Request) -> dict:
        parsed = await parse_upload(request, storage, max_file_bytes=1 << 20, max_files=2)
        names = [f.filename for f in parsed.files]
        parsed.cleanup()
        return {"files": names, "fields": sorted(parsed.fields)}

    client = TestClient(app)
    client.storage = storage  # type: ignore[attr-defined]
    return client


def _body(parts: list[bytes], end: bool = True) -> bytes:
    out = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + BOUNDARY.encode() + b"--\r\n" if end else b"")


def _field(name: str, value: bytes) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value


def _file(data: bytes) -> bytes:
    head = 'Content-Disposition: form-data; name="files"; filename="a.wav"\r\n'
    return (head + "Content-Type: audio/wav\r\n\r\n").encode() + data


def _post(client, body: bytes):
    return client.post(
        "/up", content=body, headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    )


def _temp_files(client) -> list:
    return [p for p in client.storage.root.rglob("*") if p.is_file()]


def test_an_ordinary_upload_passes(client, tmp_path):
    wav = write(tmp_path / "a.wav", tone(220.0, 0.5), 44100).read_bytes()
    r = _post(client, _body([_field("vocals_only", b"true"), _file(wav)]))
    assert r.status_code == 200, r.text
    assert r.json() == {"files": ["a.wav"], "fields": ["vocals_only"]}


def test_form_fields_are_bounded_in_number_and_bytes(client):
    many = [_field(f"f{i}", b"x") for i in range(MAX_FIELDS + 1)]
    r = _post(client, _body(many))
    assert r.status_code == 413 and f"At most {MAX_FIELDS} form fields" in r.json()["detail"]
    big = [_field(f"f{i}", b"x" * 60_000) for i in range(MAX_FIELDS_TOTAL_BYTES // 60_000 + 1)]
    r = _post(client, _body(big))
    assert r.status_code == 413 and "form fields are larger" in r.json()["detail"]


def test_a_part_without_a_name_is_a_plain_400(client):
    r = _post(client, _body([b"Content-Type: text/plain\r\n\r\nhello"]))
    assert r.status_code == 400 and "Content-Disposition" in r.json()["detail"]


def test_a_body_cut_off_before_its_end_is_called_so_and_leaves_no_file(client, tmp_path):
    wav = write(tmp_path / "a.wav", tone(220.0, 0.5), 44100).read_bytes()
    r = _post(client, _body([_file(wav[:5000])], end=False))
    assert r.status_code == 400 and "cut off" in r.json()["detail"]
    assert _temp_files(client) == []
