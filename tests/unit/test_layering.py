"""The import rules of the tree, checked on the source (every import statement, including the
lazy ones inside functions) and on a running API process.

- ``app.core`` is the infrastructure both the API and the workers use: it imports neither the
  web layer (``app.api``, FastAPI) nor ``worker``;
- nothing in ``app`` imports ``worker``; ``worker`` uses ``app.core`` only, never ``app.api``;
- ``svc_core`` (the engine, usable without the web) imports nothing of ours outside itself;
- the API process does not load torch or the engine's model code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) for every import in the package's source."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [(str(path.relative_to(ROOT)), node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.append((str(path.relative_to(ROOT)), node.lineno, node.module))
    return out


def _offending(package: str, forbidden: tuple[str, ...], under: str = "") -> list[str]:
    return [
        f"{f}:{line} imports {mod}"
        for f, line, mod in _imports(package)
        if f.startswith(under or package)
        and any(mod == p or mod.startswith(p + ".") for p in forbidden)
    ]


def test_the_scan_sees_imports():
    """The rules below mean something only if the scan finds imports at all."""
    mods = {m for _, _, m in _imports("worker")}
    assert "app.core.db.models" in mods and "svc_core.errors" in mods


def test_app_never_imports_worker():
    assert _offending("app", ("worker",)) == []


def test_infrastructure_imports_no_web_layer():
    assert _offending("app", ("app.api", "fastapi", "starlette"), under="app/core") == []


def test_worker_uses_only_the_infrastructure_of_app():
    assert _offending("worker", ("app.api", "app.cli", "fastapi")) == []


def test_engine_imports_nothing_of_ours():
    assert _offending("svc_core", ("app", "worker", "migrations", "tests")) == []


@pytest.mark.timeout(120)
def test_api_process_loads_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from app.core.config import Settings\n"
        "from app.api.main import create_app\n"
        f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchaudio', 'librosa', 'worker', 'celery.worker') "
        "or m.startswith('svc_core.model'))\n"
        "print(heavy)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=110
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout
