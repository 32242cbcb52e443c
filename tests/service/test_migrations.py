"""Migrations build the schema from nothing on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.core.db.models import Base, UTCDateTime


def _diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_head_matches_models(db_url):
    assert _diff(db_url) == []
    engine = create_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "users",
        "api_tokens",
        "voices",
        "tracks",
        "jobs",
        "artifacts",
        "conversions",
        "worker_beats",
        "alembic_version",
    } <= tables


def test_downgrade_to_base_and_back(db_url):
    from alembic import command
    from alembic.config import Config

    from migrations import alembic_config_path

    cfg = Config(str(alembic_config_path()))
    cfg.set_main_option("sqlalchemy.url", db_url)
    command.downgrade(cfg, "base")
    engine = create_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(cfg, "head")
    assert _diff(db_url) == []


def test_timestamps_are_utc_aware(db_url):
    from app.core.db import crud
    from app.core.db.session import session_scope

    with session_scope(db_url) as s:
        user = crud.create_user(s, name="tz")
        uid = user.id
    with session_scope(db_url) as s:
        user = crud.get_user_by_name(s, name="tz")
        assert user is not None and user.id == uid
        assert user.created_at.tzinfo is not None
        assert user.created_at.utcoffset().total_seconds() == 0
    assert isinstance(Base.metadata.tables["jobs"].c.heartbeat_at.type, UTCDateTime)
