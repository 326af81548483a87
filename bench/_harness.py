"""Shared by the benchmarks: the real app on a real port against the fake portal (loopback only)."""

from __future__ import annotations

import socket
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
