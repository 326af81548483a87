"""Shared by the benchmarks: the real app on a real port against the fake portal (loopback only)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from callcoach.app import create_app  # noqa: E402
from callcoach.config import Settings  # noqa: E402
from callcoach.context import SERVICES, Services  # noqa: E402


def shared_calls() -> Path:
    return REPO.parent / "shared" / "calls"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class App:
    url: str
    runner: web.AppRunner

    @property
    def services(self) -> Services:
        return self.runner.app[SERVICES]  # type: ignore[union-attr]


async def start_app(portal: Any, data_dir: Path, **overrides: Any) -> App:
    port = free_port()
    values: dict[str, Any] = dict(
        public_url=f"http://127.0.0.1:{port}",
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        oauth_url=portal.oauth_url,  # installs are verified at the fake's OAuth server
        allow_private_portals=True,  # the fake portal is on 127.0.0.1
        data_dir=data_dir,
        sweep_minutes=0,
        record_retry_minutes=[0.01],
        _env_file=None,
    )
    values.update(overrides)
    runner = web.AppRunner(create_app(Settings(**values)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return App(f"http://127.0.0.1:{port}", runner)


async def serve_process(portal: Any, data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """``callcoach serve`` in its own process, ready when /livez answers."""
    import aiohttp

    full_env = {
        **os.environ,
        "CALLCOACH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALLCOACH_HOST": "127.0.0.1",
        "CALLCOACH_PORT": str(port),
        "CALLCOACH_DATA_DIR": str(data_dir),
        "CALLCOACH_CLIENT_ID": portal.client_id,
        "CALLCOACH_CLIENT_SECRET": portal.client_secret,
        "CALLCOACH_OAUTH_URL": portal.oauth_url,
        "CALLCOACH_ALLOW_PRIVATE_PORTALS": "true",  # the fake portal is on 127.0.0.1
        "CALLCOACH_SWEEP_MINUTES": "0",
        "CALLCOACH_LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "callcoach.cli", "serve"], env=full_env, cwd=REPO)  # noqa: ASYNC220
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/livez") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("callcoach serve did not start")
