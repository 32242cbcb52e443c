"""A built wheel is a whole server: every module, the engine's configs, the migrations and the
browser UI; installed from it (not from the checkout) the server serves the UI. A server whose
UI is missing refuses to start instead of serving 404s."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("app", "worker", "svc_core", "migrations", "frontend")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout (the build writes build/ and egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (whl,) = out.glob("svc_studio-*.whl")
    return whl


@pytest.mark.timeout(400)
def test_wheel_holds_every_module_the_ui_and_the_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    ui = {
        "app/frontend/" + str(p.relative_to(ROOT / "frontend"))
        for p in (ROOT / "frontend").rglob("*")
        if p.is_file()
    }
    assert "app/frontend/index.html" in ui and ui <= names, sorted(ui - names)
    code = {
        str(p.relative_to(ROOT))
        for pkg in ("app", "worker", "svc_core", "migrations")
        for p in (ROOT / pkg).rglob("*.py")
    }
    assert code - names == set()
    data = {
        str(p.relative_to(ROOT))
        for p in [*(ROOT / "svc_core/configs").glob("*.yaml"), ROOT / "migrations/alembic.ini"]
    }
    assert data - names == set()
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


@pytest.mark.timeout(400)
def test_server_installed_from_the_wheel_serves_the_ui(wheel, tmp_path):
    target = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
        + [str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    code = (
        "import app, sys\n"
        f"assert app.__file__.startswith({str(target)!r}), app.__file__\n"
        "from fastapi.testclient import TestClient\n"
        "from app.core.config import Settings\n"
        "from app.api.main import create_app\n"
        f"c = TestClient(create_app(Settings(data_dir={str(tmp_path / 'data')!r})))\n"
        "r = c.get('/')\n"
        "assert r.status_code == 200 and '<html' in r.text.lower(), r.status_code\n"
        "print('ui ok')\n"
    )
    # run outside the checkout, with the installed copy first on the path
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and "ui ok" in res.stdout, res.stdout + res.stderr


def test_create_app_refuses_to_start_without_the_ui(tmp_path):
    from app.api.main import FrontendMissingError, create_app
    from app.core.config import Settings

    empty = tmp_path / "no-ui"
    empty.mkdir()
    with pytest.raises(FrontendMissingError, match="browser UI is missing"):
        create_app(Settings(data_dir=tmp_path / "d", frontend_dir=empty))
    api_only = create_app(Settings(data_dir=tmp_path / "d", serve_ui=False))
    assert not any(getattr(r, "name", "") == "frontend" for r in api_only.routes)
    served = create_app(Settings(data_dir=tmp_path / "d"))
    assert any(getattr(r, "name", "") == "frontend" for r in served.routes)
