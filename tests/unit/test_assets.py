"""The pretrained-asset registry: pull over real HTTP (a local server), import, verify."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from svc_core import assets as assets_mod
from svc_core.assets import (
    LOCK_FILENAME,
    REGISTRY,
    Asset,
    AssetKind,
    asset_path,
    import_file,
    list_assets,
    pull,
    read_lock,
    verify,
)
from svc_core.errors import AssetHashError, AssetMissingError, SvcError

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: several read chunks
SIDECAR = b'{"sidecar": true}'


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving two files; yields its base URL."""
    files = {"/model.bin": PAYLOAD, "/side.json": SIDECAR}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _registry(base: str, *, sha256: str | None, prefix: str | None = None) -> dict[str, Asset]:
    side = Asset(
        name="side",
        kind=AssetKind.SIDECAR,
        filename="side.json",
        url=f"{base}/side.json",
        sha256=None,
        licence="test",
        description="sidecar",
    )
    model = Asset(
        name="model",
        kind=AssetKind.SEPARATION,
        filename="model.bin",
        url=f"{base}/model.bin",
        sha256=sha256,
        sha256_prefix=prefix,
        licence="test",
        description="model",
        requires=("side",),
    )
    gone = Asset(
        name="gone",
        kind=AssetKind.F0,
        filename="gone.bin",
        url=f"{base}/does-not-exist.bin",
        sha256=None,
        licence="test",
        description="404",
    )
    return {a.name: a for a in (side, model, gone)}


def _leftovers(models_dir: Path) -> list[str]:
    return [p.name for p in models_dir.iterdir() if p.name.endswith(".part")]


def test_pull_downloads_verifies_and_records(server, tmp_path):
    reg = _registry(server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    seen: list[tuple[str, float]] = []
    path = pull("model", tmp_path, lambda s, f: seen.append((s, f)), registry=reg)

    assert path == tmp_path / "model.bin"
    assert path.read_bytes() == PAYLOAD
    assert (tmp_path / "side.json").read_bytes() == SIDECAR  # the sidecar came along
    assert _leftovers(tmp_path) == []
    lock = read_lock(tmp_path)
    assert lock["model.bin"]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert lock["model.bin"]["source"] == "pull"
    assert lock["side.json"]["sha256"] == hashlib.sha256(SIDECAR).hexdigest()
    fractions = [f for s, f in seen if s == "download model.bin"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 2
    assert dict(verify(tmp_path, registry=reg))["model"].startswith("ok")


def test_pull_hash_mismatch_installs_nothing(server, tmp_path):
    reg = _registry(server, sha256="0" * 64)
    with pytest.raises(AssetHashError, match="not the expected file"):
        pull("model", tmp_path, registry=reg)
    assert not (tmp_path / "model.bin").exists()
    assert _leftovers(tmp_path) == []
    assert "model.bin" not in read_lock(tmp_path)


def test_pull_checks_published_hash_prefix(server, tmp_path):
    good = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    pull("model", tmp_path, registry=_registry(server, sha256=None, prefix=good))
    assert (tmp_path / "model.bin").is_file()
    with pytest.raises(AssetHashError, match="does not start with"):
        pull(
            "model", tmp_path / "other", registry=_registry(server, sha256=None, prefix="ffff0000")
        )


def test_pull_http_error_is_plain(server, tmp_path):
    reg = _registry(server, sha256=None)
    with pytest.raises(SvcError, match="HTTP 404"):
        pull("gone", tmp_path, registry=reg)
    assert not (tmp_path / "gone.bin").exists()
    assert _leftovers(tmp_path) == []


def test_pull_unreachable_names_import_command(tmp_path):
    reg = _registry("http://127.0.0.1:9", sha256=None)  # port 9: nothing listens
    with pytest.raises(SvcError, match="assets import gone FILE"):
        pull("gone", tmp_path, registry=reg)


def test_pull_without_published_hash_records_it_and_detects_change(server, tmp_path):
    reg = _registry(server, sha256=None)
    pull("model", tmp_path, registry=reg)
    status = dict(verify(tmp_path, registry=reg))
    assert status["model"] == "no published hash; recorded sha256 after first pull"
    assert asset_path("model", tmp_path, check_hash=True, registry=reg).is_file()

    (tmp_path / "model.bin").write_bytes(PAYLOAD[:-1] + b"\x00")
    status = dict(verify(tmp_path, registry=reg))
    assert "CHANGED since it was recorded" in status["model"]
    with pytest.raises(AssetHashError, match="assets pull model"):
        asset_path("model", tmp_path, check_hash=True, registry=reg)
    # Pulling again replaces the changed file with the served one.
    pull("model", tmp_path, registry=reg)
    assert (tmp_path / "model.bin").read_bytes() == PAYLOAD


def test_import_right_and_wrong_hash(tmp_path):
    src = tmp_path / "download" / "weights.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    models = tmp_path / "models"
    reg = _registry("http://unused", sha256=hashlib.sha256(PAYLOAD).hexdigest())

    path = import_file("model", src, models, registry=reg)
    assert path == models / "model.bin" and path.read_bytes() == PAYLOAD
    assert read_lock(models)["model.bin"]["source"] == "import"

    bad = tmp_path / "download" / "other.bin"
    bad.write_bytes(b"not the model")
    other = tmp_path / "models2"
    with pytest.raises(AssetHashError, match="nothing was imported"):
        import_file("model", bad, other, registry=reg)
    assert not (other / "model.bin").exists()


def test_import_without_published_hash_is_recorded(tmp_path):
    src = tmp_path / "x.bin"
    src.write_bytes(b"abc")
    reg = _registry("http://unused", sha256=None)
    import_file("gone", src, tmp_path / "m", registry=reg)
    assert dict(verify(tmp_path / "m", ["gone"], registry=reg))["gone"] == (
        "no published hash; recorded sha256 after first pull"
    )


def test_missing_asset_message_names_commands(tmp_path):
    with pytest.raises(AssetMissingError) as info:
        asset_path("mdx-voc-ft", tmp_path)
    assert str(info.value) == (
        f"asset 'mdx-voc-ft' is not installed in {tmp_path}; run `svc-studio assets pull "
        "mdx-voc-ft` (or `svc-studio assets import mdx-voc-ft FILE` on a machine without network)"
    )
    with pytest.raises(AssetMissingError, match="unknown asset 'nope'"):
        asset_path("nope", tmp_path)


def test_verify_reports_missing_mismatch_and_hand_placed(tmp_path):
    reg = _registry("http://unused", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    (tmp_path / "model.bin").write_bytes(b"wrong")
    (tmp_path / "side.json").write_bytes(SIDECAR)
    status = dict(verify(tmp_path, registry=reg))
    assert status["gone"] == "missing"
    assert status["model"].startswith("MISMATCH")
    assert "not recorded (placed by hand)" in status["side"]


def test_registry_is_consistent():
    assert len({a.filename for a in REGISTRY.values()}) == len(REGISTRY)
    for a in REGISTRY.values():
        for dep in a.requires:
            assert dep in REGISTRY, (a.name, dep)
        if a.name.startswith("whisper-"):
            # OpenAI's URLs carry the sha256 of the file in their path.
            assert a.url.split("/")[-2] == a.sha256 and len(a.sha256) == 64
        if a.sha256_prefix:
            assert a.sha256_prefix in a.filename
    kinds = {a.kind for a in list_assets()}
    assert {AssetKind.CONTENT, AssetKind.F0, AssetKind.SEPARATION, AssetKind.BASE_MODEL} <= kinds
    for name in ("mdx-voc-ft", "vr-deecho-dereverb", "mdx-karaoke-2"):
        assert "uvr-download-checks" in REGISTRY[name].requires


def test_cli_pull_list_verify(server, tmp_path, monkeypatch):
    from svc_core.commands.assets import assets

    reg = _registry(server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setattr(assets_mod, "REGISTRY", reg)
    monkeypatch.setenv("SVC_MODELS_DIR", str(tmp_path / "env-models"))
    runner = CliRunner()

    res = runner.invoke(assets, ["pull", "model"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "env-models" / "model.bin").read_bytes() == PAYLOAD

    res = runner.invoke(assets, ["list"])
    assert res.exit_code == 0 and "installed" in res.output

    explicit = tmp_path / "explicit"
    res = runner.invoke(assets, ["pull", "gone", "--models-dir", str(explicit)])
    assert res.exit_code == 1 and "HTTP 404" in res.output

    (tmp_path / "env-models" / "model.bin").write_bytes(b"corrupt")
    res = runner.invoke(assets, ["verify", "--installed-only"])
    assert res.exit_code == 1 and "MISMATCH" in res.output and "gone" not in res.output

    src = tmp_path / "w.bin"
    src.write_bytes(PAYLOAD)
    res = runner.invoke(assets, ["import", "model", str(src)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(assets, ["verify", "model"])
    assert res.exit_code == 0 and "ok" in res.output
    lock = json.loads((tmp_path / "env-models" / LOCK_FILENAME).read_text())
    assert lock["files"]["model.bin"]["source"] == "import"


def test_sovits5_speaker_asset_and_preset():
    a = REGISTRY["sovits5-speaker"]
    assert a.kind == AssetKind.SPEAKER == "speaker"
    assert a.filename == "best_model.pth.tar"
    assert a.sha256 is None and a.sha256_prefix is None  # no publisher states one
    assert a.url.startswith("https://") and a.url.endswith("/best_model.pth.tar")
    assert a.licence.startswith("unspecified")
    assert list_assets("speaker") == [a]

    assert assets_mod.PRESETS["sovits5"] == (
        "sovits5-pretrain",
        "whisper-large-v2",
        "hubert-soft",
        "sovits5-speaker",
    )
    for preset, names in assets_mod.PRESETS.items():
        assert [x.name for x in assets_mod.preset_assets(preset)] == list(names)
        assert all(n in REGISTRY for n in names), preset
    assert "torchcrepe" in assets_mod.PRESET_NOTES["sovits5"]
    with pytest.raises(AssetMissingError, match="unknown preset 'nope'; known presets: sovits5"):
        assets_mod.preset_assets("nope")


def test_missing_sovits5_speaker_names_pull_command(tmp_path):
    with pytest.raises(AssetMissingError, match="`svc-studio assets pull sovits5-speaker`"):
        asset_path("sovits5-speaker", tmp_path)


def test_cli_pull_preset_and_list_presets(server, tmp_path, monkeypatch):
    from svc_core.commands.assets import assets

    reg = _registry(server, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setattr(assets_mod, "REGISTRY", reg)
    monkeypatch.setattr(assets_mod, "PRESETS", {"set": ("model", "side")})
    monkeypatch.setattr(assets_mod, "PRESET_NOTES", {"set": "X ships inside a package"})
    models = tmp_path / "models"
    runner = CliRunner()

    res = runner.invoke(assets, ["list", "--models-dir", str(models)])
    assert res.exit_code == 0, res.output
    assert "presets (svc-studio assets pull --preset NAME):" in res.output
    assert "0/2 installed: model, side" in res.output and "X ships inside a package" in res.output

    # names are optional with a preset; the preset's assets come first, each once
    res = runner.invoke(assets, ["pull", "--preset", "set", "side", "--models-dir", str(models)])
    assert res.exit_code == 0, res.output
    assert (models / "model.bin").read_bytes() == PAYLOAD
    assert (models / "side.json").read_bytes() == SIDECAR
    assert res.output.count("side: ") == 1
    assert "preset set: X ships inside a package" in res.output

    res = runner.invoke(assets, ["list", "--models-dir", str(models)])
    assert "2/2 installed: model, side" in res.output

    res = runner.invoke(assets, ["pull", "--preset", "nope", "--models-dir", str(models)])
    assert res.exit_code == 1 and "unknown preset 'nope'" in res.output

    res = runner.invoke(assets, ["pull", "--models-dir", str(models)])
    assert res.exit_code == 2 and "--preset" in res.output


def test_cli_list_shows_sovits5_preset(tmp_path):
    from svc_core.commands.assets import assets

    res = CliRunner().invoke(assets, ["list", "--models-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "sovits5-speaker" in res.output and "speaker" in res.output
    assert (
        "0/4 installed: sovits5-pretrain, whisper-large-v2, hubert-soft, sovits5-speaker"
        in res.output
    )
    assert "torchcrepe" in res.output
