"""Run an ASGI app on a real loopback port for the length of a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, host: str = "127.0.0.1", port: int = 0, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve `app` with uvicorn inside the running loop; yields its base URL, e.g. http://127.0.0.1:41234.

    When the app fails to start, its own exception is raised here (uvicorn would log it and exit)."""
    failures: list[BaseException] = []

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            if scope["type"] == "lifespan":
                failures.append(exc)
            raise

    async def run() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn's sys.exit on a failed start-up must not stop the loop
            await server.serve()

    config = uvicorn.Config(watched, host=host, port=port, log_level="warning",
                            lifespan=lifespan, access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.create_task(run())
    while not server.started:
        if task.done():
            task.result()
            if failures:
                raise failures[0]
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.005)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{host}:{bound[1]}"
    finally:
        server.should_exit = True
        await task


class LoopbackFake:
    """A fake server's running part: `async with fake.serve(): fake.url`. Subclasses set `self.app`; their
    slow or hanging answers wait on `self.stopping`, which is set first when the server stops."""

    app: Any
    url: str | None = None
    stopping: asyncio.Event | None = None

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[Any]:
        """Run on a real loopback port with uvicorn; `url` is set while inside."""
        self.stopping = asyncio.Event()
        async with serve_app(self.app, host=host, port=port, lifespan="off") as url:
            self.url = url
            try:
                yield self
            finally:
                self.stopping.set()  # release held answers before uvicorn waits for open requests
                self.url = None
