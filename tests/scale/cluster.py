"""A scaled-out installation on this machine, for the scale-out test and bench/scale.py:
``callcoach serve`` (the web tier) and N ``callcoach worker`` processes on the local RabbitMQ,
Redis and PostgreSQL, against the fake portal. Each cluster has its own PostgreSQL database, its
own queue names and Redis key prefix (the namespace), so parallel runs never meet."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from callcoach.config import Settings
from callcoach.storage import Store
from tests.fakes.portal import FakePortal
from tests.helpers import data_dir_with_shared_models

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_DSN = os.environ.get("CALLCOACH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER_URL = os.environ.get("CALLCOACH_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("CALLCOACH_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def services_missing() -> str | None:
    """What of PostgreSQL, RabbitMQ and Redis does not answer (None: all do)."""
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        await conn.close()
    except Exception as exc:
        return f"PostgreSQL ({exc})"
    try:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        await redis.ping()
        await redis.aclose()
    except Exception as exc:
        return f"Redis ({exc})"
    try:
        from kombu import Connection

        def probe() -> None:
            with Connection(BROKER_URL, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)

        await asyncio.to_thread(probe)
    except Exception as exc:
        return f"RabbitMQ ({exc})"
    return None


@dataclass
class Cluster:
    portal: FakePortal
    root: Path
    models_dir: Path | None = None  # a data dir whose models/ the workers share (joined once)
    env_extra: dict[str, str] = field(default_factory=dict)
    worker_cmd: list[str] = field(default_factory=lambda: [sys.executable, "-m", "callcoach.cli", "worker"])
    namespace: str = field(default_factory=lambda: "cc-test-" + secrets.token_hex(4))
    database_url: str = ""
    port: int = 0
    serve: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    store: Store | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def create_database(self) -> None:
        import asyncpg

        name = self.namespace.replace("-", "_")
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.database_url = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + name

    def env(self, data_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
            "CALLCOACH_PUBLIC_URL": self.url,
            "CALLCOACH_HOST": "127.0.0.1",
            "CALLCOACH_PORT": str(self.port),
            "CALLCOACH_DATA_DIR": str(data_dir),
            "CALLCOACH_CLIENT_ID": self.portal.client_id,
            "CALLCOACH_CLIENT_SECRET": self.portal.client_secret,
            "CALLCOACH_OAUTH_URL": self.portal.oauth_url,  # installs are verified at the fake's OAuth server
            "CALLCOACH_ALLOW_PRIVATE_PORTALS": "true",  # the fake portal is on 127.0.0.1
            "CALLCOACH_SWEEP_MINUTES": "0",
            "CALLCOACH_BROKER_URL": BROKER_URL,
            "CALLCOACH_REDIS_URL": REDIS_URL,
            "CALLCOACH_DATABASE_URL": self.database_url,
            "CALLCOACH_NAMESPACE": self.namespace,
            "CALLCOACH_REST_RATE": str(self.portal.rate),
            "CALLCOACH_REST_BURST": str(self.portal.burst),
            **self.env_extra,
        }

    def _spawn(self, cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        if self.models_dir is not None:
            data_dir_with_shared_models(data, self.models_dir)
        log = (self.root / f"{name}.log").open("ab")
        return subprocess.Popen(
            cmd, env=self.env(data), stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )

    async def start_serve(self, within_s: float = 180) -> None:
        from tests.helpers import free_port

        if not self.database_url:
            await self.create_database()
        self.port = free_port()
        self.serve = self._spawn([sys.executable, "-m", "callcoach.cli", "serve"], "serve")
        async with aiohttp.ClientSession() as http:
            for _ in range(int(within_s * 10)):
                if self.serve.poll() is not None:
                    raise RuntimeError("serve exited:\n" + self.log("serve")[-3000:])
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/livez") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
        self.store = await Store.open(self.database_url)

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        proc = self._spawn([*self.worker_cmd, *args], f"worker{len(self.workers)}")
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and all it started: no clean-up of any kind runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    async def portal_id(self) -> int:
        assert self.store is not None
        row = await self.store.portals.by_member(self.portal.member_id)
        assert row is not None
        return row.id

    async def held_by(self, proc: subprocess.Popen[bytes], states: tuple[str, ...]) -> int:
        """Jobs in ``states`` whose lease ``proc`` holds (its owner names host-pid-…)."""
        from sqlalchemy import and_, func, select

        from callcoach.storage.schema import jobs

        assert self.store is not None
        async with self.store.db.connect() as conn:
            q = select(func.count()).where(
                and_(
                    jobs.c.state.in_(states),
                    jobs.c.lease_owner.like(f"%-{proc.pid}-%"),
                    jobs.c.lease_owner.notlike("dispatch:%"),
                )
            )
            return int((await conn.execute(q)).scalar_one())

    def queue_depths(self) -> dict[str, int]:
        from callcoach.workflow.celery_app import Publisher

        publisher = Publisher(self.settings())
        try:
            return publisher.queue_depths()
        finally:
            publisher.close()

    def settings(self) -> Settings:
        return Settings(  # type: ignore[call-arg]
            broker_url=BROKER_URL, namespace=self.namespace, database_url=self.database_url, _env_file=None
        )

    async def close(self) -> None:
        for proc in [*self.workers, *([self.serve] if self.serve else [])]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    self.kill(proc)
        if self.store is not None:
            await self.store.close()
        await asyncio.to_thread(self._delete_queues)
        with contextlib.suppress(Exception):
            from redis.asyncio import Redis

            redis = Redis.from_url(REDIS_URL)
            keys = [k async for k in redis.scan_iter(f"{self.namespace}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
        if self.database_url:
            import asyncpg

            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
            try:
                name = self.database_url.rsplit("/", 1)[1]
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

    def _delete_queues(self) -> None:
        from kombu import Connection

        from callcoach.workflow.celery_app import KINDS, queue_name

        with contextlib.suppress(Exception), Connection(BROKER_URL, connect_timeout=5) as conn:
            channel = conn.channel()
            for kind in KINDS:
                with contextlib.suppress(Exception):
                    channel.queue_delete(queue_name(self.settings(), kind))


async def wait_terminal(store: Store, count: int, within_s: float, on_tick: Any = None) -> dict[str, int]:
    """Wait until ``count`` jobs are finished; returns the counts by state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        counts = await store.jobs.counts_by_state()
        if on_tick is not None:
            await on_tick(counts)
        if counts["done"] + counts["failed"] + counts["skipped"] >= count:
            return counts
        if loop.time() > deadline:
            raise AssertionError(f"not finished within {within_s} s: {counts}")
        await asyncio.sleep(0.5)
