#!/usr/bin/env bash
# Runs the whole test suite: lint, unit, service (PostgreSQL + Redis + SQLite), integration
# (API over HTTP + real Celery worker processes) and browser tests. Starts local PostgreSQL
# and Redis when they are installed but not running. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "test: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "test: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
  fi
fi

.venv/bin/ruff check app worker svc_core tests bench migrations setup.py
.venv/bin/ruff format --check --quiet app worker svc_core tests bench migrations setup.py
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
