"""The real ``callcoach serve`` as a child process, for the tests that kill it with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.fakes.portal import FakePortal
from tests.helpers import data_dir_with_shared_models


def serve_env(portal: FakePortal, port: int, data: Path, models: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``callcoach serve`` on ``port`` with its data in ``data`` (created,
    the session's joined models linked in) that trusts ``portal`` (installs verified at its OAuth
    server); ``extra`` adds or overrides settings."""
    data_dir_with_shared_models(data, models)
    return {
        **os.environ,
        "CALLCOACH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CALLCOACH_HOST": "127.0.0.1",
        "CALLCOACH_PORT": str(port),
        "CALLCOACH_DATA_DIR": str(data),
        "CALLCOACH_CLIENT_ID": portal.client_id,
        "CALLCOACH_CLIENT_SECRET": portal.client_secret,
        "CALLCOACH_OAUTH_URL": portal.oauth_url,
        "CALLCOACH_ALLOW_PRIVATE_PORTALS": "true",  # the fake portal is on 127.0.0.1
        "CALLCOACH_SWEEP_MINUTES": "0",
        **extra,
    }


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
