"""Scaled-out throughput: the web tier and N workers (real processes on the local RabbitMQ,
PostgreSQL and Redis) against the fake portal, with many short calls; then the same with one
worker killed (SIGKILL) a third of the way through. Loopback only, bounded in time.

    python bench/scale.py [--calls 500] [--workers 2] [--analyzer light|real] [--rate 2] [--burst 50]

Prints calls/min, REST requests per call (the recording downloads are not REST requests), peak
queue depth (messages waiting in RabbitMQ, and calls not finished in the database), and whether
every call got exactly one comment within the portal's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.portal import FakePortal
from tests.scale.cluster import Cluster, services_missing, wait_terminal

ROOT = Path(__file__).resolve().parents[1]


async def run_once(args: argparse.Namespace, recording: bytes, *, kill_one: bool) -> dict[str, float | str]:
    worker_cmd = (
        [sys.executable, str(ROOT / "bench" / "_light_worker.py")]
        if args.analyzer == "light"
        else [sys.executable, "-m", "callcoach.cli", "worker"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with FakePortal(rate=args.rate, burst=args.burst) as portal:
            cluster = Cluster(
                portal,
                Path(tmp),
                worker_cmd=worker_cmd,
                env_extra={"CALLCOACH_JOB_LEASE_S": "10", "CALLCOACH_LOG_LEVEL": "WARNING"},
            )
            try:
                await cluster.start_serve()
                workers = [
                    cluster.start_worker("--concurrency", str(args.concurrency)) for _ in range(args.workers)
                ]
                await portal.install(cluster.url + "/b24/install")
                for n in range(args.calls):
                    portal.add_deal(100_000 + n)
                    portal.add_call(
                        f"bench-{n}",
                        recording=recording,
                        user_id=1,
                        duration=20,
                        crm_activity_id=200_000 + n,
                        bindings=[(2, 100_000 + n)],
                    )
                assert cluster.store is not None
                before = len(portal.requests)
                peak = {"queue": 0, "open": 0}
                killed = ""

                async def sample(counts: dict[str, int]) -> None:
                    nonlocal killed
                    depths = await asyncio.to_thread(cluster.queue_depths)
                    peak["queue"] = max(peak["queue"], sum(depths.values()))
                    finished = counts["done"] + counts["failed"] + counts["skipped"]
                    peak["open"] = max(peak["open"], sum(counts.values()) - finished)
                    if kill_one and not killed and finished >= args.calls // 3:
                        Cluster.kill(workers[0])
                        killed = f"worker killed at {finished} calls done"

                started = time.monotonic()
                for n in range(args.calls):
                    data = portal.call_end_event_data(f"bench-{n}")
                    await portal.send_event(cluster.url + "/b24/events", "ONVOXIMPLANTCALLEND", data)
                counts = await wait_terminal(cluster.store, args.calls, within_s=args.timeout, on_tick=sample)
                wall = time.monotonic() - started
                per_deal = {}
                for c in portal.comments:
                    per_deal[int(c["ENTITY_ID"])] = per_deal.get(int(c["ENTITY_ID"]), 0) + 1
                return {
                    "calls/min": args.calls / wall * 60,
                    "wall s": wall,
                    "done": counts["done"],
                    "REST req/call": (len(portal.requests) - before) / args.calls,
                    "peak queue (broker)": peak["queue"],
                    "peak open (db)": peak["open"],
                    "comments": len(portal.comments),
                    "duplicates": sum(v - 1 for v in per_deal.values() if v > 1),
                    "rejected (429/503)": len(portal.rejected),
                    "max req in 1 s": portal.max_requests_in_window(1.0),
                    "note": killed or "all workers up",
                }
            finally:
                await cluster.close()


async def main_async(args: argparse.Namespace) -> int:
    missing = await services_missing()
    if missing:
        print(f"scale bench needs PostgreSQL, RabbitMQ and Redis: {missing} is not reachable")
        return 1
    calls_dir = ROOT.parent / "shared" / "calls"
    recording = (calls_dir / "dev02.mp3").read_bytes()
    print(
        f"{args.calls} calls of a 21 s recording, web + {args.workers} workers × concurrency "
        f"{args.concurrency}, portal limit {args.rate:g}/s burst {args.burst}"
    )
    if args.analyzer == "light":
        print(
            "analyzer: LIGHT (bench/_light_worker.py: decodes each recording, fixed findings, no speech "
            "model) — on this 2-core machine the real model would measure only Whisper; broker, database, "
            "Redis budget, lookups, downloads and write-backs are the real ones"
        )
    rows = [("all workers up", await run_once(args, recording, kill_one=False))]
    rows.append(("one worker SIGKILLed", await run_once(args, recording, kill_one=True)))
    keys = [k for k in rows[0][1] if k != "note"]
    print(f"{'':24s}" + "".join(f"{k:>22s}" for k in keys))
    for name, row in rows:
        cells = "".join(f"{row[k]:>22.2f}" if isinstance(row[k], float) else f"{row[k]!s:>22s}" for k in keys)
        print(f"{name:24s}{cells}")
    for name, row in rows:
        print(f"{name}: {row['note']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--analyzer", choices=["light", "real"], default="light")
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=1800)
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
