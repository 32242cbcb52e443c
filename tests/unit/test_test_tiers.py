"""The test suite's own rules: every test sits in a tier folder and carries exactly that tier's
marker (tests/unit none), so ``-m`` selects tiers; the markers are the ones pyproject declares;
test modules share helpers only through tests/common, never by importing another test module
or a conftest."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.common.tiers import TESTS, TIER_MARKERS, TIERS

ROOT = TESTS.parent
UNIT_ONLY = " and ".join(f"not {m}" for m in sorted(TIER_MARKERS))

# Collects the suite with -m UNIT_ONLY in a fresh interpreter and writes every item, selected
# or deselected, with its marker names, to the file given as argv[1].
_COLLECT = """
import json, sys
import pytest

class Recorder:
    selected, deselected = [], []
    def pytest_deselected(self, items):
        self.deselected.extend(items)
    def pytest_collection_finish(self, session):
        self.selected = list(session.items)

rec = Recorder()
args = ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", sys.argv[2], "tests"]
code = pytest.main(args, plugins=[rec])
rows = lambda items: [
    [str(i.path), i.nodeid, sorted({m.name for m in i.iter_markers()})] for i in items
]
with open(sys.argv[1], "w") as f:
    json.dump({"code": int(code), "selected": rows(rec.selected),
               "deselected": rows(rec.deselected)}, f)
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("collect") / "items.json"
    r = subprocess.run(
        [sys.executable, "-c", _COLLECT, str(out), UNIT_ONLY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), r.stdout[-3000:] + r.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["code"] == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return data


def _tier(path: str) -> str:
    return Path(path).resolve().relative_to(TESTS).parts[0]


def test_markers_are_the_declared_ones():
    with open(ROOT / "pyproject.toml", "rb") as f:
        ini = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    declared = {line.split(":")[0].strip() for line in ini["markers"]}
    assert declared == TIER_MARKERS
    assert "--strict-markers" in ini["addopts"].split()


def test_every_test_carries_its_tiers_marker_and_no_other(collected):
    items = collected["selected"] + collected["deselected"]
    assert items
    wrong = []
    for path, nodeid, markers in items:
        tier = _tier(path)
        assert tier in TIERS, f"{nodeid}: tests/{tier} is not a tier ({sorted(TIERS)})"
        expected = {TIERS[tier]} - {None}
        if TIER_MARKERS.intersection(markers) != expected:
            wrong.append(f"{nodeid}: {sorted(TIER_MARKERS.intersection(markers))}")
    assert not wrong, "tier markers do not match the folder:\n" + "\n".join(wrong)
    assert {_tier(path) for path, _, _ in items} >= set(TIERS) - {"gpu"}


def test_deselecting_the_tier_markers_selects_exactly_the_unit_tier(collected):
    selected = {nodeid for path, nodeid, _ in collected["selected"] if _tier(path) == "unit"}
    assert selected == {nodeid for _, nodeid, _ in collected["selected"]}
    assert not [nodeid for path, nodeid, _ in collected["deselected"] if _tier(path) == "unit"]
    assert __name__.replace(".", "/") + ".py::test_markers_are_the_declared_ones" in selected


def _imported_test_modules(path: Path) -> list[str]:
    """Modules under tests/ that ``path`` imports, other than tests.common."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            base = node.module
            names = [f"{base}.{a.name}" for a in node.names] if base == "tests" else [base]
        elif isinstance(node, ast.ImportFrom):  # relative: resolves inside tests/
            names = [f"tests.<relative>.{node.module or ''}"]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "tests" and not (
                name == "tests.common" or name.startswith("tests.common.")
            ):
                found.append(name)
    return found


def test_helpers_are_shared_only_through_tests_common():
    bad = {
        str(p.relative_to(ROOT)): mods
        for p in sorted(TESTS.rglob("*.py"))
        if (mods := _imported_test_modules(p))
    }
    assert not bad, f"import shared helpers from tests/common, not test modules/conftest: {bad}"
