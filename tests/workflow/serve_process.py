"""The real ``callcoach serve`` as a child process, for the tests that kill it with SIGKILL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp


def start_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "callcoach.cli", "serve"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the analysis child is in the group: killpg takes both
    )


async def is_up(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/livez") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False
