"""Event acknowledgement latency under load: ONVOXIMPLANTCALLEND events posted form-encoded (as
Bitrix24 does) at a target rate; prints p50/p99 of the time to the 200.

Three processes, as in production: ``callcoach serve`` (models loaded, its worker analysing real
calls the whole time), the load generator (its own process, so its CPU does not slow the
clock it reads), and this one (the fake portal, the orchestration). After the measured run a
second burst is cut by ``kill -9`` of the server, and every event that got its 200 is looked up
in the database.

    python bench/ack_latency.py [--rate 300] [--seconds 10]
    python bench/ack_latency.py --rate 1000 --database-url postgresql://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _harness import REPO, free_port, serve_process, shared_calls

from callcoach.storage import Store
from tests.fakes.portal import FakePortal, php_form

ANALYSED_CALLS = 3  # real recordings queued before the load, so the worker analyses throughout


async def main(rate: float, seconds: float, database_url: str | None, analysis: bool = True) -> None:
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            db_url, drop = await _database(database_url, Path(tmp))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {"CALLCOACH_WORKERS": "2", "CALLCOACH_DATABASE_URL": db_url}
            server = await serve_process(portal, Path(tmp), port, **env)
            store = await Store.open(db_url)
            try:
                await portal.install(url + "/b24/install")
                priority = await _models_loaded(url)  # measure the steady state, not the start-up
                if analysis:
                    await _start_analysis(portal, url)
                    await _wait_state(store, portal, "analysis-0", ("transcribing",))
                bodies = _bodies(portal, "load", int(rate * seconds))
                cpu, analysis_cpu = _cpu_seconds(server.pid), _children_cpu(server.pid)
                result = await _load(url, bodies, rate)
                cpu = _cpu_seconds(server.pid) - cpu
                analysis_cpu = _children_cpu(server.pid) - analysis_cpu
                analysing = await _job_state(store, portal, "analysis-0")
                lat = sorted(result["latencies"])
                q = statistics.quantiles(lat, n=100)
                kind = "PostgreSQL" if db_url.startswith("postgres") else "SQLite"
                print(
                    f"{kind}: {len(bodies)} events at a target of {rate:.0f}/s, "
                    f"achieved {len(bodies) / result['wall']:.0f}/s, statuses {result['statuses']}"
                )
                print(
                    f"ack latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
                    f"max {lat[-1] * 1000:.1f} ms; the worker was analysing a real call "
                    f"(job state at the end: {analysing}; its CPU priority: {priority})"
                )
                print(
                    f"server CPU {cpu / len(bodies) * 1000:.2f} ms an event "
                    f"({cpu / result['wall'] * 100:.0f}% of a core; the analysis process not counted); "
                    f"the load process {result['cpu'] / len(bodies) * 1000:.2f} ms an event; "
                    f"the analysis process meanwhile {analysis_cpu / result['wall'] * 100:.0f}% of a core"
                )
                slow = result["slow"]
                if slow:  # clustered (a stall) or spread (CPU starvation)?
                    seconds = sorted({int(t) for t in slow})
                    print(f"{len(slow)} acknowledgements over 10 ms, sent in seconds {seconds} of the run")
                # durability: a burst cut by kill -9; every acknowledged event must be stored
                burst = _bodies(portal, "kill", int(rate * 5))
                load = asyncio.create_task(_load(url, burst, rate))
                await asyncio.sleep(3.0)  # the load process starts, then posts for 5 s
                os.kill(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
                cut = await load
                acked = cut["acked"]
                row = await store.portals.by_member(portal.member_id)
                assert row is not None
                stored = await store.jobs.known_calls(row.id, acked)
                lost = len(set(acked) - stored)
                print(
                    f"kill -9 in a burst: {len(acked)} events acknowledged before the kill, "
                    f"{len(stored)} of them in the database, {lost} lost"
                )
            finally:
                if server.poll() is None:
                    server.terminate()
                    server.wait(timeout=30)
                await store.close()
                await drop()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu(pid: int) -> float:
    """CPU used by the server's child processes (the analysis process) that are still running."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += _cpu_seconds(int(child))
            except OSError:  # it ended meanwhile
                pass
    return total


def _bodies(portal: FakePortal, prefix: str, count: int) -> list[tuple[str, str]]:
    bodies = []
    for n in range(count):
        call_id = f"{prefix}-{n}"
        # missed calls: acknowledged and stored, then skipped without analysis
        portal.add_call(call_id, recording=None, user_id=1, duration=0, failed_code=304)
        form = php_form(
            {
                "event": "ONVOXIMPLANTCALLEND",
                "data": portal.call_end_event_data(call_id),
                "auth": {
                    "application_token": portal.application_token,
                    "member_id": portal.member_id,
                    "domain": portal.domain,
                },
            }
        )
        bodies.append((call_id, form))
    return bodies


async def _load(url: str, bodies: list[tuple[str, str]], rate: float) -> dict[str, Any]:
    """Run the load generator in its own process; returns its measurements."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"url": url, "rate": rate, "bodies": bodies}, f)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--load-file", f.name, stdout=asyncio.subprocess.PIPE, cwd=REPO
        )
        out, _ = await proc.communicate()
        return dict(json.loads(out))
    finally:
        os.unlink(f.name)


async def _generate(spec_file: str) -> None:
    """The load process: post every body at its time, measure each acknowledgement."""
    spec = json.loads(Path(spec_file).read_text())
    # The load process is the measuring instrument: a full collection of its own heap (ten
    # thousand bodies, tasks and responses) would stall its clock for tens of milliseconds and
    # be counted as the server's latency. It allocates little per request and runs for seconds.
    gc.collect()
    gc.freeze()
    gc.disable()
    url, rate, bodies = spec["url"] + "/b24/events", float(spec["rate"]), spec["bodies"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    acked: list[str] = []
    sent: list[float] = []
    slow: list[float] = []  # when the acknowledgements over 10 ms were sent
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def fire(call_id: str, body: str) -> None:
            t0 = time.perf_counter()
            sent.append(t0 - started)
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    key = str(resp.status)
                    if resp.status == 200:
                        acked.append(call_id)
            except aiohttp.ClientError:
                key = "dropped"
            statuses[key] = statuses.get(key, 0) + 1
            latencies.append(time.perf_counter() - t0)
            slow.extend([round(t0 - started, 3)] if latencies[-1] > 0.010 else [])

        tasks = []
        started, cpu = time.perf_counter(), time.process_time()
        for n, (call_id, body) in enumerate(bodies):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(call_id, body)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "latencies": latencies,
                "statuses": statuses,
                "acked": acked,
                "wall": wall,
                "slow": slow,
                "cpu": time.process_time() - cpu,
            }
        )
    )


async def _start_analysis(portal: FakePortal, url: str) -> None:
    calls = sorted(shared_calls().glob("dev*.mp3"))
    for n in range(ANALYSED_CALLS):
        call_id = f"analysis-{n}"
        portal.add_deal(900 + n)
        portal.add_call(
            call_id, recording=calls[n % len(calls)], user_id=1, duration=40, bindings=[(2, 900 + n)]
        )
        await portal.send_event(
            url + "/b24/events", "ONVOXIMPLANTCALLEND", portal.call_end_event_data(call_id)
        )


async def _job_state(store: Store, portal: FakePortal, call_id: str) -> str | None:
    row = await store.portals.by_member(portal.member_id)
    job = await store.jobs.by_call(row.id, call_id) if row else None
    return job.state if job else None


async def _wait_state(store: Store, portal: FakePortal, call_id: str, states: tuple[str, ...]) -> None:
    for _ in range(1200):
        if await _job_state(store, portal, call_id) in states:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{call_id} never reached {states}")


async def _models_loaded(url: str) -> str:
    """Wait for the analysis process; returns its CPU priority arrangement (pipeline/priority.py)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            async with http.get(url + "/healthz") as resp:
                model = (await resp.json()).get("model") or {}
            if model.get("text_loaded") and (model.get("whisper") or {}).get("loaded"):
                return str(model.get("priority", "in the server's process"))
            await asyncio.sleep(0.25)
    raise RuntimeError("the models never loaded")


async def _database(url: str | None, tmp: Path) -> tuple[str, Any]:
    """SQLite in ``tmp``, or a fresh database on the PostgreSQL server of ``url`` (dropped after)."""

    async def nothing() -> None:
        return None

    if not url:
        return f"sqlite+aiosqlite:///{tmp / 'callcoach.db'}", nothing
    import asyncpg  # type: ignore[import-untyped]

    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"bench_ack_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(plain)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(plain)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return plain.rsplit("/", 1)[0] + "/" + name, drop


def _run_light(main: Any) -> None:
    """The load process on uvloop where installed: the instrument shares the machine's cores
    with the server it measures, so the less CPU it burns per request the less it disturbs it."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", help="PostgreSQL server to bench on (a fresh database is made)")
    parser.add_argument("--no-analysis", action="store_true", help="no real call analysed meanwhile")
    parser.add_argument("--load-file", help=argparse.SUPPRESS)  # the load process
    args = parser.parse_args()
    if args.load_file:
        _run_light(_generate(args.load_file))
    else:
        asyncio.run(main(args.rate, args.seconds, args.database_url, not args.no_analysis))
