"""End to end: the shared calls go through the real app (event → recording → analysis →
comment) against the fake portal; prints calls per minute, the realtime factor and the REST
calls per analysed call.

    python bench/e2e.py [--calls 12] [--stereo]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from _harness import shared_calls, start_app

from tests.fakes.portal import FakePortal


async def main(limit: int, stereo: bool) -> None:
    calls = sorted(shared_calls().glob("dev*.json"))[:limit]
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            app = await start_app(portal, Path(tmp))
            try:
                await portal.install(app.url + "/b24/install")
                await _model_ready(app)
                audio_s = 0.0
                for n, truth_file in enumerate(calls):
                    truth = json.loads(truth_file.read_text())
                    audio = truth_file.with_suffix(".stereo.mp3" if stereo else ".mp3")
                    audio_s += truth["duration_s"]
                    portal.add_deal(100 + n)
                    portal.add_call(
                        truth["id"],
                        recording=audio,
                        user_id=1,
                        duration=int(truth["duration_s"]),
                        crm_activity_id=5000 + n,
                        bindings=[(2, 100 + n)],
                    )
                before = len(portal.requests)
                started = time.perf_counter()
                for truth_file in calls:
                    call_id = truth_file.stem
                    await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data(call_id))
                while True:
                    counts = await app.services.store.jobs.counts_by_state()
                    if counts["done"] + counts["failed"] + counts["skipped"] >= len(calls):
                        break
                    await asyncio.sleep(0.2)
                wall = time.perf_counter() - started
                rest = len(portal.requests) - before
                print(
                    f"calls: {len(calls)} ({'stereo' if stereo else 'mono 8 kHz'}), audio {audio_s:.0f} s, "
                    f"wall {wall:.1f} s, done {counts['done']}, failed {counts['failed']}"
                )
                print(
                    f"throughput: {len(calls) / wall * 60:.1f} calls/min; "
                    f"realtime factor {wall / audio_s:.3f} "
                    f"({audio_s / wall:.1f}x faster than real time)"
                )
                print(
                    f"REST calls per analysed call: {rest / max(1, counts['done']):.1f} "
                    f"(comments {len(portal.comments)})"
                )
            finally:
                await app.runner.cleanup()


async def _model_ready(app) -> None:  # type: ignore[no-untyped-def]
    load = app.services.model_load
    if load is not None:
        await load


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--stereo", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.stereo))
