"""Alembic migrations. ``alembic -c migrations/alembic.ini upgrade head`` or ``svc-studio db
upgrade``; the API and ``serve`` upgrade on start."""

from pathlib import Path


def alembic_config_path() -> Path:
    return Path(__file__).resolve().parent / "alembic.ini"
