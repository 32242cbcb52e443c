"""Engine and session factory, one per process and database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

# Sized for the API's concurrency: sync endpoints run in anyio's thread pool (40 threads), each
# needing at most one connection at a time (authentication uses its own short session, which
# is back in the pool before the endpoint's session connects). A request that still finds the
# pool empty waits POOL_TIMEOUT_S and is answered 503 with Retry-After (app.api.main), not 500.
POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT_S = 20, 20, 10.0


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # How long a writer waits for another process's write lock before giving up
        # ("database is locked", which the API answers with 503): 30 s unless the URL says
        # otherwise (``sqlite:///path.db?timeout=5``).
        args: dict[str, object] = {"check_same_thread": False}
        if "timeout" not in make_url(url).query:
            args["timeout"] = 30
        engine = create_engine(
            url,
            connect_args=args,
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_timeout=POOL_TIMEOUT_S,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # WAL lets the API read while a worker writes; foreign keys are off by default.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_S,
    )


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
