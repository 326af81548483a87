"""The database handle: an async SQLAlchemy engine plus migrations run at start-up.

SQLite (aiosqlite, WAL) is the embedded default; PostgreSQL (asyncpg) works by changing the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def now() -> float:
    return time.time()


def normalise_url(url: str) -> str:
    """Accept the plain URLs people write and pick the async driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine: AsyncEngine = self._make_engine(echo)

    def _make_engine(self, echo: bool) -> AsyncEngine:
        if self.url.startswith("sqlite"):
            path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url, echo=echo, connect_args={"timeout": 30})
            # aiosqlite logs every statement with its parameters at DEBUG: the portals' tokens
            # would land in the log of anyone who turns DEBUG on. Its INFO and above stay.
            logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger("aiosqlite").level))

            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            return engine
        return create_async_engine(self.url, echo=echo, pool_pre_ping=True)

    def sqlite_connect(self) -> sqlite3.Connection | None:
        """For SQLite in a file: a plain sqlite3 connection to the same file with the same
        pragmas, in autocommit mode (the caller says BEGIN), for a writer that runs whole
        transactions in a thread of its own. None for PostgreSQL and in-memory databases."""
        if not self.url.startswith("sqlite") or ":///" not in self.url:
            return None
        path = self.url.split(":///", 1)[1]
        if not path or path == ":memory:":
            return None
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        _sqlite_pragmas(conn, None)
        return conn

    async def checkpoint_forever(self, interval_s: float = 0.5) -> None:
        """SQLite only: move the WAL into the database file every ``interval_s``, off the loop.

        SQLite checkpoints by itself once the WAL passes 1,000 pages, inside whichever commit
        crosses the line, and that commit then waits for the copy and its fsync: on a busy
        intake every request of that group waits with it (half a second on a loaded disk).
        A PASSIVE checkpoint here, in a thread of its own, keeps the WAL short so that the
        automatic one never comes due; it never blocks a writer. Run it as a task; cancel to stop."""
        if not self.url.startswith("sqlite") or ":///" not in self.url:
            return
        path = self.url.split(":///", 1)[1]
        if not path or path == ":memory:":
            return

        def checkpoint() -> None:
            with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(checkpoint)
            except sqlite3.Error:
                pass  # busy now: the next round will do it

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:
            return False

    def begin(self) -> Any:
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    def insert_ignore(self, table: Table, values: Mapping[str, Any], *conflict_cols: str) -> Insert:
        """INSERT that does nothing when a row with the same unique key exists."""
        ins: Any = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return ins.values(**values).on_conflict_do_nothing(index_elements=list(conflict_cols))

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web handlers read while the worker writes; foreign keys are off
    # by default in SQLite and the schema relies on ON DELETE CASCADE.
    # synchronous=NORMAL in WAL mode: a commit is written to the WAL file (so it is in
    # the operating system once COMMIT returns) and fsynced at checkpoints. A killed
    # process (kill -9, OOM, crash) loses nothing that committed, which is what the
    # intake's acknowledgement promises; only a power cut or kernel crash can take
    # the last commits with it. FULL would fsync every commit (one intake group), a
    # few ms each on an SSD; run on storage that survives power loss instead.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _upgrade(sync_conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


__all__ = ["AsyncConnection", "Database", "normalise_url", "now"]
