"""A real redis-server for the tests that need one: started on a free loopback port, thrown away.

`make test` installs redis-server with apt-get when it is missing; without it these tests fail
and say so (a skipped test would hide that the shared dedupe store went untested).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.net import free_port


@asynccontextmanager
async def redis_server(directory: Path, port: int | None = None) -> AsyncIterator[str]:
    """Run redis-server (no persistence) until the block ends; yields its redis:// URL.
    ``port``: a given one (to start a server again where clients expect it), else a free one."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: `make test` installs it, "
            "or run `apt-get install redis-server`"
        )
    port = port or free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = Redis.from_url(url)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        break
                except (OSError, RedisConnectionError):
                    pass
                if process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("redis-server did not answer within 10 s")
        finally:
            await client.aclose()
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
