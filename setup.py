"""Everything is in pyproject.toml; this only copies the browser UI (the top-level frontend/,
where the project layout keeps it) into the built package as ``app/frontend``, so a wheel or a
plain ``pip install .`` serves the UI. setuptools' package-data cannot reach a directory that
is outside every package, hence the build step."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithFrontend(build_py):
    def run(self) -> None:
        super().run()
        src = Path(__file__).resolve().parent / "frontend"
        if not (src / "index.html").is_file():
            raise SystemExit(f"frontend/index.html is missing under {src.parent}")
        shutil.copytree(src, Path(self.build_lib) / "app" / "frontend", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithFrontend})
