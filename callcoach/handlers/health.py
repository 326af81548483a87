"""Liveness, readiness and metrics."""

from __future__ import annotations

from aiohttp import web

from callcoach import __version__, gpu
from callcoach.context import SERVICES

routes = web.RouteTableDef()


@routes.get("/livez")
async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _status(request: web.Request) -> tuple[bool, dict[str, object]]:
    services = request.app[SERVICES]
    db_ok = await services.store.db.ping()
    depth = await services.store.jobs.queue_depth() if db_ok else None
    model = services.analyzer.state() if services.analyzer is not None else {"loaded": False}
    runner = services.runner.state() if services.runner is not None else {"running": False}
    ready = db_ok and bool(runner.get("running", False))
    body: dict[str, object] = {
        "status": "ok" if ready else "degraded",
        "version": __version__,
        "database": "ok" if db_ok else "unreachable",
        "queue_depth": depth,
        "model": model,
        "worker": runner,
        "llm": services.settings.llm,
    }
    return ready, body


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    ready, body = await _status(request)
    return web.json_response(body, status=200 if ready else 503)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, body = await _status(request)
    return web.json_response(body, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    m = services.metrics
    if await services.store.db.ping():
        for state, count in (await services.store.jobs.counts_by_state()).items():
            m.jobs.labels(state).set(count)
        m.queue_depth.set(await services.store.jobs.queue_depth())
    used = gpu.memory_in_use()
    if used is not None:
        m.gpu_memory.set(used)
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


def setup(app: web.Application) -> None:
    app.add_routes(routes)
