"""The ASGI app: ``uvicorn app.main:app``. Assembly only: settings, routers, static
files, templates and the lifespan of the worker pool."""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.assets import folder
from app.browser import BrowserCookie
from app.head import HeadAsGet
from app.limits import AddressCounter
from app.routes import api, docs, jobs, labs_advanced, pages, ws
from app.routes import labs as labs_routes
from app.scheduler import LoopMonitor, Registry, Worker
from app.security import SecurityHeaders
from app.settings import Settings, get_settings
from jobs.cluster import JobManager


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # worker threads hold the GIL between numpy calls; a short switch interval lets
        # the event loop take it back within about a millisecond instead of five
        sys.setswitchinterval(settings.switch_interval_ms / 1000.0)
        monitor = asyncio.create_task(app.state.loop_monitor.run())
        yield
        monitor.cancel()
        training = getattr(app.state, "training", None)  # started by the first session
        if training is not None:
            training.stop()
        app.state.worker.close()
        await app.state.jobs.close()  # the embedded Dask cluster, if a job started it

    # /docs is our own page on vendored Swagger UI (app/routes/docs.py); no ReDoc (a CDN)
    app = FastAPI(title="Backprop Lab", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.add_middleware(SecurityHeaders)
    if settings is not get_settings():
        app.dependency_overrides[get_settings] = lambda: settings
    app.state.settings = settings
    app.state.worker = Worker(settings.worker_threads)
    app.state.registry = Registry()
    app.state.loop_monitor = LoopMonitor()
    app.state.addresses = AddressCounter()
    # heavy jobs (issue 9): the Dask cluster is started or reached by the first job
    app.state.jobs = JobManager(
        scheduler=settings.scheduler, local_workers=settings.local_workers,
        time_limit_s=settings.job_time_limit_s, connect_timeout_s=settings.scheduler_timeout_s,
        kept_per_owner=settings.jobs_kept_per_browser, kept=settings.jobs_kept,
    )
    # templates/ and static/: beside the packages in a checkout, inside `app` when installed
    app.state.templates = Jinja2Templates(directory=folder("templates"))
    app.include_router(api.router)
    app.include_router(ws.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.include_router(jobs.router)
    app.include_router(labs_routes.router)  # the guided labs (issue 11)
    app.include_router(labs_advanced.router)  # labs 5-7's endpoints (issue 11)
    app.add_middleware(BrowserCookie)  # the browser id jobs belong to (app/browser.py)
    app.mount("/static", StaticFiles(directory=folder("static"), check_dir=False), name="static")
    app.add_middleware(HeadAsGet)  # HEAD on every GET route (app/head.py)
    return app


app = create_app()
