"""Event acknowledgement latency under a loopback load: ONVOXIMPLANTCALLEND events posted
form-encoded (as Bitrix24 does) at a target rate; prints p50/p99 of the time to the 200.
The app runs as its own ``callcoach serve`` process, as in production; this process holds the
fake portal and the load generator.

    python bench/ack_latency.py [--rate 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from _harness import free_port, serve_process

from tests.fakes.portal import FakePortal, php_form


async def main(rate: float, seconds: float) -> None:
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            server = await serve_process(portal, Path(tmp), port, CALLCOACH_WORKERS="2")
            try:
                await portal.install(url + "/b24/install")
                await _models_loaded(url)  # measure the steady state, not the start-up
                total = int(rate * seconds)
                bodies = []
                for n in range(total):
                    # missed calls: acknowledged and stored, then skipped without analysis
                    portal.add_call(f"load-{n}", recording=None, user_id=1, duration=0, failed_code=304)
                    bodies.append(
                        php_form(
                            {
                                "event": "ONVOXIMPLANTCALLEND",
                                "data": portal.call_end_event_data(f"load-{n}"),
                                "auth": {
                                    "application_token": portal.application_token,
                                    "member_id": portal.member_id,
                                    "domain": portal.domain,
                                },
                            }
                        )
                    )
                latencies: list[float] = []
                statuses: dict[int, int] = {}
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                async with aiohttp.ClientSession() as http:

                    async def fire(body: str) -> None:
                        t0 = time.perf_counter()
                        async with http.post(url + "/b24/events", data=body, headers=headers) as resp:
                            await resp.read()
                            statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        latencies.append(time.perf_counter() - t0)

                    tasks = []
                    started = time.perf_counter()
                    for n, body in enumerate(bodies):
                        delay = started + n / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(fire(body)))
                    await asyncio.gather(*tasks)
                    wall = time.perf_counter() - started
                q = statistics.quantiles(latencies, n=100)
                print(
                    f"events: {total} at a target of {rate:.0f}/s, "
                    f"achieved {total / wall:.0f}/s, statuses {statuses}"
                )
                print(
                    f"ack latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
                    f"max {max(latencies) * 1000:.1f} ms"
                )
            finally:
                server.terminate()
                server.wait(timeout=30)


async def _models_loaded(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(1200):
            async with http.get(url + "/healthz") as resp:
                model = (await resp.json()).get("model") or {}
            if model.get("text_loaded") and (model.get("whisper") or {}).get("loaded"):
                return
            await asyncio.sleep(0.25)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
