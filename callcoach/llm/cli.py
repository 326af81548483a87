"""``callcoach llm "Привет"``: ask the configured backend one question to check it works.

The answer goes to stdout, the latency line to stderr (so the answer can be piped). Exit codes:
0 answered, 1 the backend is ``none`` or failed, 2 a configuration error (raised as ConfigError and
reported by ``callcoach.cli.main``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from callcoach.config import Settings
from callcoach.llm.base import LLMError, LLMRequest
from callcoach.llm.factory import build_llm


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("llm", help="ask the configured LLM backend a question (a health check)")
    parser.add_argument("prompt", nargs="?", default="Привет", help="the question (default: Привет)")
    parser.add_argument("--system", default=None, help="system instruction")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_ask(args, settings))


async def _ask(args: argparse.Namespace, settings: Settings) -> int:
    llm = build_llm(settings, max_attempts=1)  # a health check reports the first failure as it is
    if llm is None:
        print(
            "callcoach llm: no LLM is configured (CALLCOACH_LLM=none); "
            "set CALLCOACH_LLM=gemini or CALLCOACH_LLM=openai",
            file=sys.stderr,
        )
        return 1
    request = LLMRequest.ask(
        args.prompt, system=args.system, max_tokens=args.max_tokens, temperature=args.temperature
    )
    started = time.monotonic()
    try:
        answer = await llm.complete(request)
    except LLMError as exc:
        print(f"callcoach llm: {llm.name} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await llm.close()
    print(answer)
    model = getattr(getattr(llm, "inner", None), "model", "")
    print(f"{llm.name}{' ' + model if model else ''}: {time.monotonic() - started:.2f} s", file=sys.stderr)
    return 0
