"""Alembic environment: runs on the connection handed over by Database.migrate(), or on
CALLCOACH_DATABASE_URL when alembic is run by hand (e.g. for autogenerate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from callcoach.storage.schema import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    import os

    url = os.environ.get("CALLCOACH_SYNC_DATABASE_URL", "sqlite:///./data/alembic.db")
    with create_engine(url).begin() as conn:
        _run(conn)
