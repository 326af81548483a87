"""The intake's write: a group of accepted events and the jobs of their calls, all or nothing.

On SQLite the transaction runs whole in a thread of the writer's own, on a plain sqlite3
connection to the same file, with fixed statement texts: through aiosqlite every cursor,
execute, fetch and commit was a hop to its thread and back (a dozen a group, each a wake-up of
both threads and a hand-over of the GIL), and SQLAlchemy built and compiled three statements a
group; together 3.2 ms of server CPU an event at 300 events/s, most of a core
(bench/ack_latency.py). On PostgreSQL every round trip costs a turn of the
event loop that is serving a thousand requests a second, and the transaction used to take seven
of them (pool ping, BEGIN, the events, the look-up of existing jobs, the jobs, COMMIT; a new
statement text, so a new PREPARE, for every group size): a group took 6 ms where PostgreSQL's
own commit takes 0.7. So PostgreSQL gets ONE statement: the rows travel as arrays (``unnest``,
one fixed statement text that asyncpg prepares once), the two inserts are data-modifying CTEs
of that statement, which PostgreSQL runs as one transaction (all or nothing) in autocommit
mode, and ``ON CONFLICT DO NOTHING RETURNING`` names the jobs that were created, without a
separate look-up and without a race with another process inserting the same call. The writer
keeps its connection between groups (no pool check-out, no ping); one that fails is dropped.

The statement goes to asyncpg directly, on the driver connection under SQLAlchemy's: a group is
usually one to three events (the commit is quick, so few arrive while one is in flight), and
SQLAlchemy's execution layer (greenlet hand-off, parameter processing, result wrapping) cost more
client CPU than asyncpg's own bind and fetch, 0.46 ms against 0.28 per group (measured on these
two cores). Its errors are re-raised as SQLAlchemy's, which is what the intake's callers handle.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import JSON, Column, Float, Integer, String, Table, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from callcoach.storage.db import Database, now
from callcoach.storage.jobs import JobRepo
from callcoach.storage.schema import events, jobs

EventRow = tuple[int, str, dict[str, Any], bool]
"""(portal_id, event, payload, processed)"""
CallRow = tuple[int, str, dict[str, Any], str | None]
"""(portal_id, call_id, the call's facts, skip reason)"""


def _pg_kind(column: Column[Any]) -> str:
    """The array element type a column's values travel in (json travels as text, see _unnest)."""
    kind = column.type
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, Integer):
        return "int"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, String):
        return "text"
    raise TypeError(f"no array type for {column.name}: {kind!r}")


def _columns(table: Table, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, _pg_kind(table.c[name])) for name in names)


def _unnest(columns: Sequence[tuple[str, str]], prefix: str) -> str:
    """``SELECT a, b::json, ... FROM unnest(CAST(:p_a AS int[]), CAST(:p_b AS text[]), ...) AS
    u(a, b, ...)``: json travels as text (asyncpg's json codec wants text anyway) and is cast
    in the select."""
    arrays = ", ".join(
        f"CAST(:{prefix}{name} AS {'text' if kind == 'json' else kind}[])" for name, kind in columns
    )
    picks = ", ".join(f"{name}::json" if kind == "json" else name for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return f"SELECT {picks} FROM unnest({arrays}) AS u({names})"


_EVENT_COLUMNS = _columns(events, ("portal_id", "event", "payload", "received_at", "processed_at"))
# the columns of a new job are the ones JobRepo.new_row fills: one definition of a new job
_JOB_COLUMNS = _columns(jobs, tuple(JobRepo.new_row(0, "", {}, None, "event", 0.0)))
_PG_WRITE = text(
    f"""
    WITH new_events AS (
        INSERT INTO events ({", ".join(n for n, _ in _EVENT_COLUMNS)})
        {_unnest(_EVENT_COLUMNS, "e_")}
    )
    INSERT INTO jobs ({", ".join(n for n, _ in _JOB_COLUMNS)})
    {_unnest(_JOB_COLUMNS, "j_")}
    ON CONFLICT (portal_id, call_id) DO NOTHING
    RETURNING portal_id, call_id
    """
)


class IntakeLog:
    def __init__(self, db: Database, jobs: JobRepo) -> None:
        self.db = db
        self.jobs = jobs
        self._conn: AsyncConnection | None = None  # PostgreSQL: the writer's own connection
        self._driver: Any = None  # its asyncpg connection
        self._statement: tuple[str, tuple[str, ...]] | None = None  # $n text, parameter names
        self._sqlite: tuple[sqlite3.Connection, ThreadPoolExecutor] | None = None  # and its thread

    async def write(self, events: Sequence[EventRow], calls: Sequence[CallRow]) -> set[tuple[int, str]]:
        """Store ``events`` and create the jobs of ``calls`` (the first delivery of a call wins);
        returns the keys of the jobs that were created. One transaction: all or nothing."""
        if self.db.dialect == "postgresql":
            return await self._write_postgres(events, calls)
        if self._sqlite is None and (own := self.db.sqlite_connect()) is not None:
            self._sqlite = (own, ThreadPoolExecutor(1, thread_name_prefix="intake-sqlite"))
        if self._sqlite is None:  # an in-memory database lives only in the async engine's pool
            async with self.db.begin() as conn:
                return await conn.run_sync(lambda c: _write_sqlite(c.connection.cursor(), events, calls))
        sqlite_conn, thread = self._sqlite

        def transaction() -> set[tuple[int, str]]:
            sqlite_conn.execute("BEGIN IMMEDIATE")  # the write lock now, not halfway through
            try:
                created = _write_sqlite(sqlite_conn.cursor(), events, calls)
                sqlite_conn.execute("COMMIT")
            except BaseException:
                if sqlite_conn.in_transaction:  # a failed COMMIT too: the next group starts clean
                    sqlite_conn.execute("ROLLBACK")
                raise
            return created

        try:
            return await asyncio.get_running_loop().run_in_executor(thread, transaction)
        except Exception as exc:  # the intake's callers handle SQLAlchemy's errors (503, retry)
            raise OperationalError("intake write", None, exc) from exc

    async def _write_postgres(
        self, events: Sequence[EventRow], calls: Sequence[CallRow]
    ) -> set[tuple[int, str]]:
        t = now()
        params: dict[str, list[Any]] = {f"e_{name}": [] for name, _ in _EVENT_COLUMNS}
        for portal_id, event, payload, processed in events:
            params["e_portal_id"].append(portal_id)
            params["e_event"].append(event)
            params["e_payload"].append(json.dumps(payload))
            params["e_received_at"].append(t)
            params["e_processed_at"].append(t if processed else None)
        wanted = JobRepo.first_deliveries(calls)
        params.update({f"j_{name}": [] for name, _ in _JOB_COLUMNS})
        for (portal_id, call_id), (call, skip) in sorted(wanted.items()):
            row = JobRepo.new_row(portal_id, call_id, call, skip, "event", t)
            for name, kind in _JOB_COLUMNS:
                value = row[name]
                params[f"j_{name}"].append(json.dumps(value) if kind == "json" else value)
        try:
            driver, (sql, names) = await self._driver_connection()
            created = await driver.fetch(sql, *(params[name] for name in names))
            return {(int(r[0]), str(r[1])) for r in created}
        except BaseException as exc:
            await self.close()  # a broken or cancelled connection is not reused
            if isinstance(exc, Exception) and not isinstance(exc, SQLAlchemyError):
                raise OperationalError("intake write", None, exc) from exc
            raise

    async def _driver_connection(self) -> tuple[Any, tuple[str, tuple[str, ...]]]:
        if self._conn is None:
            conn = await self.db.engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            self._driver = (await self._conn.get_raw_connection()).driver_connection
        if self._statement is None:
            compiled = _PG_WRITE.compile(dialect=self._conn.dialect)  # $1, $2, ... as asyncpg wants
            self._statement = (str(compiled), tuple(compiled.positiontup or ()))
        return self._driver, self._statement

    async def close(self) -> None:
        sqlite_writer, self._sqlite = self._sqlite, None
        if sqlite_writer is not None:
            sqlite_conn, thread = sqlite_writer
            await asyncio.to_thread(thread.shutdown)  # a transaction under way finishes first
            sqlite_conn.close()
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
            finally:
                await conn.close()


def _write_sqlite(cur: Any, events_: Sequence[EventRow], calls: Sequence[CallRow]) -> set[tuple[int, str]]:
    """The group's statements on a DB-API cursor of SQLite (sqlite3's, or aiosqlite's adapted
    one inside ``run_sync``), inside the caller's transaction: the
    events in one ``executemany``, then each new job; ``ON CONFLICT DO NOTHING`` leaves a call
    that already has a job alone, and the row count says which were created."""
    t = now()
    cur.executemany(
        _SQLITE_EVENT,
        [(p, e, json.dumps(payload), t, t if done else None) for p, e, payload, done in events_],
    )
    created: set[tuple[int, str]] = set()
    for (portal_id, call_id), (call, skip) in JobRepo.first_deliveries(calls).items():
        row = JobRepo.new_row(portal_id, call_id, call, skip, "event", t)
        values = [json.dumps(row[name]) if kind == "json" else row[name] for name, kind in _JOB_COLUMNS]
        cur.execute(_SQLITE_JOB, values)
        if cur.rowcount == 1:
            created.add((portal_id, call_id))
    return created


_SQLITE_EVENT = (
    f"INSERT INTO events ({', '.join(n for n, _ in _EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)
_SQLITE_JOB = (
    f"INSERT INTO jobs ({', '.join(n for n, _ in _JOB_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _JOB_COLUMNS)}) ON CONFLICT (portal_id, call_id) DO NOTHING"
)
