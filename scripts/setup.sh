#!/usr/bin/env bash
# Installs everything svc-studio needs on a Debian-like machine with Python 3.11 (or 3.12):
# system packages (ffmpeg, espeak-ng, sox, libsndfile, Chromium for UI tests, a compiler for
# pyworld/webrtcvad), a virtual environment in .venv and the project with its dev extras.
# Idempotent: a second run with nothing changed only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi

apt_pkgs=(ffmpeg espeak-ng sox libsndfile1 chromium chromium-driver gcc g++)
if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'; then
  apt_pkgs+=(python3-dev)
fi
if ! "$PY" -m venv --help >/dev/null 2>&1; then apt_pkgs+=(python3-venv); fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi

stamp=".venv/.svc-studio-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages (first run: several GB for the torch stack)"
  .venv/bin/python -m pip install -q --upgrade "pip<26" "setuptools<81" wheel
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/svc-studio)"
