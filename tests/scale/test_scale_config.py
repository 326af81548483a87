"""The scaled-out mode says clearly what it is missing: `callcoach serve` and `callcoach worker`
as a person runs them, in a process of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CALLCOACH_")} | {
        "CALLCOACH_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "callcoach.cli", *args],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_with_a_broker_and_sqlite_names_postgresql(tmp_path: Path) -> None:
    out = _run(["serve"], tmp_path, CALLCOACH_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")
    assert out.returncode == 2
    assert "CALLCOACH_DATABASE_URL: PostgreSQL is required when CALLCOACH_BROKER_URL is set" in out.stderr


def test_serve_with_a_broker_and_no_redis_names_redis(tmp_path: Path) -> None:
    out = _run(
        ["serve"],
        tmp_path,
        CALLCOACH_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
        CALLCOACH_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/nowhere",
    )
    assert out.returncode == 2 and "CALLCOACH_REDIS_URL: required" in out.stderr


def test_worker_without_a_broker_says_so(tmp_path: Path) -> None:
    out = _run(["worker"], tmp_path)
    assert out.returncode == 2 and "CALLCOACH_BROKER_URL: required by `callcoach worker`" in out.stderr
