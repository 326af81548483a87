"""``callcoach serve``: the web app with its worker pool and scheduler."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from typing import Any

from aiohttp import web

from callcoach.config import ConfigError, Settings
from callcoach.logs import setup_logging

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the app (web server, workers, scheduler)"
    )
    parser.add_argument("--host", help="override CALLCOACH_HOST")
    parser.add_argument("--port", type=int, help="override CALLCOACH_PORT")
    parser.set_defaults(func=run)


def check(settings: Settings) -> None:
    """What serve needs beyond what the types check."""
    from callcoach.workflow.celery_app import check_scale_out

    check_scale_out(settings)  # with a broker: PostgreSQL and Redis, or a clear error
    if settings.public_url is None:
        log.warning("CALLCOACH_PUBLIC_URL is not set: the portal cannot reach events, the bot or CoPilot")
    if settings.llm == "gemini" and not settings.gemini_api_key.get_secret_value():
        raise ConfigError("CALLCOACH_GEMINI_API_KEY: required when CALLCOACH_LLM=gemini")
    if settings.llm == "openai" and settings.openai_base_url is None:
        raise ConfigError("CALLCOACH_OPENAI_BASE_URL: required when CALLCOACH_LLM=openai")
    if settings.public_url is not None and not settings.webhook_url and not settings.client_id:
        raise ConfigError(
            "CALLCOACH_CLIENT_ID: required to install into a portal (or set CALLCOACH_WEBHOOK_URL)"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    setup_logging(settings.log_level, as_json=settings.log_json)
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    check(settings)
    from callcoach.app import create_app

    log.info(
        "callcoach on http://%s:%d (data in %s)", settings.host, settings.port, settings.data_dir.resolve()
    )
    app = create_app(settings)
    app.on_startup.append(_freeze_heap)  # after the app's own start-up (its cleanup context)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, loop=_event_loop())
    return 0


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (libuv under asyncio's API) where it is installed, asyncio's own loop otherwise.

    The intake answers every call end only after its write committed, so what an acknowledgement
    costs is mostly the loop's own work: reading the request, writing the response, waking the
    waiters of a group. Measured with bench/ack_latency.py (PostgreSQL, 1,000 events/s, two
    cores): the server needed about 80% of a core with asyncio's selector loop and about 59% with
    uvloop, and p99 fell accordingly. It is the loop aiohttp's own deployment guide suggests
    (GunicornUVLoopWebWorker); nothing of ours depends on which loop runs."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows): the standard loop does the same
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _freeze_heap(app: web.Application) -> None:
    """Keep the start-up heap out of the garbage collector's way.

    The objects made at start-up (modules, SQLAlchemy and pydantic machinery, the app) live as
    long as the process, yet every full collection walked all of them: a pause of the event loop
    that grew with the heap (measured under the intake bench: a full collection every few seconds,
    each longer than the acknowledgement budget of 10 ms). ``gc.freeze()`` moves them to a
    generation the collector never scans; what requests and jobs create later is collected as
    before. (The models live in the analysis process, not here.)"""
    gc.collect()
    gc.freeze()
