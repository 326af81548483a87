"""Chaos: the real ``callcoach serve`` against a misbehaving portal, killed at random points, and
fed hostile requests. One command; prints a summary table.

* faults — a fifth of the REST requests answered 503 QUERY_LIMIT_EXCEEDED or 500, some answered
  only after the client's timeout, the access token expiring under way (``tests/fakes/faults.py``);
  counts the comments and tips each call got.
* kills — ``kill -9`` of the server (and its analysis child) at random moments while calls are in
  flight, then a fresh start; counts the comments per call and how soon the cut-off jobs were
  taken up again.
* fuzz — malformed, oversized, deeply nested, wrongly typed, non-UTF-8 and forged bodies to every
  route; counts answers by class and the rows stored.

    python bench/chaos.py [--calls 3] [--kills 3] [--fuzz 2000] [--seed 13]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from _harness import REPO, free_port, shared_calls

from callcoach.storage import Store
from tests.fakes.faults import FaultPlan
from tests.fakes.portal import FakePortal, php_form

Row = dict[str, Any]


class Server:
    """``callcoach serve`` in its own process group (so a kill takes its analysis child too)."""

    def __init__(self, portal: FakePortal, data: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CALLCOACH_PUBLIC_URL": self.url,
            "CALLCOACH_HOST": "127.0.0.1",
            "CALLCOACH_PORT": str(self.port),
            "CALLCOACH_DATA_DIR": str(data),
            "CALLCOACH_CLIENT_ID": portal.client_id,
            "CALLCOACH_CLIENT_SECRET": portal.client_secret,
            "CALLCOACH_OAUTH_URL": portal.oauth_url,
            "CALLCOACH_ALLOW_PRIVATE_PORTALS": "true",  # the fake portal is on 127.0.0.1
            "CALLCOACH_SWEEP_MINUTES": "0",
            "CALLCOACH_LOG_LEVEL": "WARNING",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        log = (self.data / "serve.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "callcoach.cli", "serve"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(1200):
                try:
                    async with http.get(self.url + "/livez") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("callcoach serve did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)


async def _add_calls(portal: FakePortal, url: str, prefix: str, count: int, deal_base: int) -> list[str]:
    recordings = sorted(shared_calls().glob("dev*.mp3"))
    portal.add_user(7, "Андрей", [1])
    ids = []
    for n in range(count):
        call_id = f"{prefix}-{n}"
        portal.add_deal(deal_base + n)
        portal.add_call(
            call_id,
            recording=recordings[n % len(recordings)],
            user_id=7,
            duration=40,
            crm_activity_id=deal_base * 10 + n,
            bindings=[(2, deal_base + n)],
        )
        ids.append(call_id)
    for call_id in ids:
        await portal.send_event(
            url + "/b24/events", "ONVOXIMPLANTCALLEND", portal.call_end_event_data(call_id)
        )
    return ids


async def _states(store: Store, portal: FakePortal) -> dict[str, tuple[str, str | None, str | None]]:
    row = await store.portals.by_member(portal.member_id)
    jobs = await store.jobs.list_jobs(row.id) if row else []
    return {j.call_id: (j.state, j.lease_owner, j.reason) for j in jobs}


async def _until_finished(store: Store, portal: FakePortal, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        states = await _states(store, portal)
        if len(states) >= count and all(s in ("done", "failed", "skipped") for s, _, _ in states.values()):
            return
        await asyncio.sleep(0.5)


def _per_call(portal: FakePortal, deal_base: int, count: int) -> tuple[list[int], int]:
    comments = [sum(1 for c in portal.comments if int(c["ENTITY_ID"]) == deal_base + n) for n in range(count)]
    tips = sum(1 for m in portal.bot_messages + portal.notifications if "Разбор звонка" in str(m))
    return comments, tips


# --- faults ---------------------------------------------------------------------------------------
async def faults(calls: int, seed: int) -> Row:
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(
                portal, Path(tmp), CALLCOACH_JOB_RETRY_S="1", CALLCOACH_JOB_MAX_ATTEMPTS="8",
                CALLCOACH_REST_TIMEOUT_S="2",
            )  # fmt: skip
            await server.start()
            store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'callcoach.db'}")
            try:
                await portal.install(server.url + "/b24/install")
                plan = FaultPlan(error_rate=0.2, timeout_rate=0.05, timeout_s=3.0, expire_every=12, seed=seed)
                portal.faults.enable(plan)
                started = time.monotonic()
                await _add_calls(portal, server.url, "fault", calls, 600)
                await _until_finished(store, portal, calls, 900)
                wall = time.monotonic() - started
                portal.faults.disable()
                states = await _states(store, portal)
                comments, tips = _per_call(portal, 600, calls)
                injected = ", ".join(f"{k} {v}" for k, v in sorted(portal.faults.injected.items()))
                return {
                    "scenario": "portal faults (20% 503/500, 5% timeouts, token expiry)",
                    "calls": calls,
                    "done": sum(1 for s, _, _ in states.values() if s == "done"),
                    "one comment each": all(c == 1 for c in comments),
                    "tips": tips,
                    "detail": f"{wall:.0f} s; of {portal.faults.seen} REST requests: {injected}; "
                    "portal refusals beyond them: "
                    f"{len(portal.rejected)}",
                }
            finally:
                server.kill(signal.SIGTERM)
                await store.close()


# --- kills ------------------------------------------------------------------------------------------
async def kills(calls: int, count: int, seed: int) -> Row:
    rng = random.Random(seed)
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(portal, Path(tmp))
            await server.start()
            store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'callcoach.db'}")
            recoveries: list[float] = []
            cut_states: Counter[str] = Counter()
            try:
                await portal.install(server.url + "/b24/install")
                started = time.monotonic()
                await _add_calls(portal, server.url, "kill", calls, 300)
                for _ in range(count):
                    await asyncio.sleep(rng.uniform(1.0, 25.0))
                    server.kill()
                    cut = {
                        c: (s, o)
                        for c, (s, o, _) in (await _states(store, portal)).items()
                        if o and s not in ("done", "failed", "skipped")
                    }
                    cut_states.update(s for s, _ in cut.values())
                    restarted = time.monotonic()
                    await server.start()
                    while cut:
                        current = await _states(store, portal)
                        if all(
                            current[c][0] != s or current[c][1] not in (None, o) for c, (s, o) in cut.items()
                        ):
                            recoveries.append(time.monotonic() - restarted)
                            break
                        if time.monotonic() - restarted > 300:
                            recoveries.append(float("inf"))
                            break
                        await asyncio.sleep(0.2)
                await _until_finished(store, portal, calls, 900)
                wall = time.monotonic() - started
                states = await _states(store, portal)
                comments, tips = _per_call(portal, 300, calls)
                worst = f"{max(recoveries):.1f} s" if recoveries else "n/a"
                return {
                    "scenario": f"kill -9 at {count} random points",
                    "calls": calls,
                    "done": sum(1 for s, _, _ in states.values() if s == "done"),
                    "one comment each": all(c == 1 for c in comments),
                    "tips": tips,
                    "detail": f"{wall:.0f} s; jobs cut off in: {dict(cut_states) or 'none'}; "
                    f"taken up again after a restart within {worst}",
                }
            finally:
                server.kill(signal.SIGTERM)
                await store.close()


# --- fuzz -------------------------------------------------------------------------------------------
def _hostile(rng: random.Random, portal: FakePortal, route: str) -> tuple[str, bytes]:
    """(content type, body): one hostile request body. An authentic event with a wrongly typed
    CALL_ID goes to the events route only: the bot route rightly takes authentic events."""
    kind = rng.randrange(8)
    if kind == 6 and route != "/b24/events":
        kind = 5
    n = rng.randint(17, 5000)
    if kind == 0:
        return "application/x-www-form-urlencoded", rng.randbytes(rng.randint(0, 2000))
    if kind == 1:
        return "application/x-www-form-urlencoded", b"\xff\xfe" + rng.randbytes(50) + b"=\xc3"
    if kind == 2:
        return "application/json", ("[" * n + "]" * n).encode()
    if kind == 3:
        return "application/x-www-form-urlencoded", ("a" + "[b]" * n + "=1").encode()
    if kind == 4:
        return "application/json", json.dumps(rng.choice([[], 1, "x", None, [{"event": 1}]])).encode()
    if kind == 5:  # forged: the right shape, a wrong token
        body = {
            "event": "ONVOXIMPLANTCALLEND",
            "data": {"CALL_ID": "forged"},
            "auth": {"application_token": rng.randbytes(8).hex(), "member_id": portal.member_id},
        }
        return "application/x-www-form-urlencoded", php_form(body).encode()
    if kind == 6:  # authentic, with a wrongly typed CALL_ID
        body = {
            "event": "ONVOXIMPLANTCALLEND",
            "data": {"CALL_ID": rng.choice([{"a": "b"}, ["1", "2"], "", "x" * 300])},
            "auth": {"application_token": portal.application_token, "member_id": portal.member_id},
        }
        return "application/json", json.dumps(body).encode()
    return rng.choice(["multipart/form-data; boundary=z", "text/plain", "application/xml"]), rng.randbytes(
        300
    )


async def fuzz(requests: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    routes = ["/b24/events", "/b24/install", "/b24/bot", "/ai/completions?secret=nope", "/"]
    async with FakePortal() as portal:
        with tempfile.TemporaryDirectory() as tmp:
            server = Server(portal, Path(tmp))
            await server.start()
            store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'callcoach.db'}")
            try:
                await portal.install(server.url + "/b24/install")

                async def stored() -> tuple[int, int, int]:
                    jobs = await store.jobs.list_jobs()
                    return len(await store.portals.installed()), await store.events.count(), len(jobs)

                before = await stored()
                tally: dict[str, Counter[str]] = {r: Counter() for r in routes}
                async with aiohttp.ClientSession() as http:
                    for i in range(requests):
                        route = routes[i % len(routes)]
                        content_type, body = _hostile(rng, portal, route)
                        if i % 97 == 0:
                            body = b"a=" + b"x" * (5 * 1024 * 1024)  # oversized
                        try:
                            async with http.post(
                                server.url + route, data=body, headers={"Content-Type": content_type}
                            ) as resp:
                                await resp.read()
                                tally[route][f"{resp.status // 100}xx"] += 1
                        except aiohttp.ClientError:
                            tally[route]["dropped"] += 1
                    for _ in range(requests // 10):  # forged call-page links
                        job, exp, sig = rng.randint(-5, 10**12), rng.randint(0, 2**40), rng.randbytes(8).hex()
                        path = f"/calls/{job}?exp={exp}&sig={sig}"
                        async with http.get(server.url + path) as resp:
                            await resp.read()
                            tally.setdefault("/calls/…", Counter())[f"{resp.status // 100}xx"] += 1
                after = await stored()
                return [
                    {
                        "scenario": f"fuzz {route.split('?')[0]}",
                        "calls": sum(t.values()),
                        "done": "",
                        "one comment each": "",
                        "tips": "",
                        "detail": f"4xx {t['4xx']}, 5xx {t['5xx']}, dropped {t['dropped']}, other "
                        f"{sum(v for k, v in t.items() if k not in ('4xx', '5xx', 'dropped'))}",
                    }
                    for route, t in tally.items()
                ] + [
                    {
                        "scenario": "fuzz: rows stored",
                        "calls": "",
                        "done": "",
                        "one comment each": "",
                        "tips": "",
                        "detail": f"portals/events/jobs before {before}, after {after}",
                    }
                ]
            finally:
                server.kill(signal.SIGTERM)
                await store.close()


def _table(rows: list[Row]) -> str:
    headers = ["scenario", "calls / requests", "done", "one comment each", "tips", "detail"]
    keys = ["scenario", "calls", "done", "one comment each", "tips", "detail"]
    cells = [[str(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join([line, sep, *body])


async def main(args: argparse.Namespace) -> None:
    rows: list[Row] = []
    if args.fuzz:
        rows += await fuzz(args.fuzz, args.seed)
    if args.calls:
        rows.append(await faults(args.calls, args.seed))
        if args.kills:
            rows.append(await kills(args.calls, args.kills, args.seed))
    print(_table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3, help="calls per scenario (0: no faults/kills)")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--fuzz", type=int, default=2000, help="hostile requests (0: none)")
    parser.add_argument("--seed", type=int, default=13)
    asyncio.run(main(parser.parse_args()))
