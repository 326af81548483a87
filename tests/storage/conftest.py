"""The storage suites run on both databases callcoach supports: SQLite (the embedded default)
and PostgreSQL (the server on this machine; CI must reach it)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcoach.storage import Store

PG_ADMIN_DSN = os.environ.get("CALLCOACH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_database() -> str | None:
    """Create a throwaway database; None when no PostgreSQL answers."""
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except Exception:
        return None
    name = "callcoach_test_" + secrets.token_hex(4)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def _drop_pg(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    else:
        pg = await _pg_database()
        if pg is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not reachable, and CI must run the storage suite on it")
            pytest.skip("PostgreSQL is not reachable")
        url = pg
    s = await Store.open(url)
    yield s
    await s.close()
    if request.param == "postgresql":
        await _drop_pg(url)
