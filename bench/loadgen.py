"""A small HTTP/1.1 load generator for the benchmarks: keep-alive connections on 127.0.0.1, raw sockets.

Python's HTTP clients cost more per request than the servers measured here, so this speaks HTTP/1.1 itself
on uvloop: one coroutine per connection, one request in flight per connection, latency per request.
Requests are built by a callable (a fresh, signed body each time), so every delivery is a new event.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    def line(self, label: str) -> str:
        return (f"{label:<34} {self.rate:>9.0f} req/s   p50 {self.percentile(0.5) * 1000:6.2f} ms   "
                f"p99 {self.percentile(0.99) * 1000:6.2f} ms   statuses {dict(sorted(self.statuses.items()))}")


def http_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n{head}\r\n").encode() + body


async def _connection(port: int, make_request: Callable[[], bytes], stop_at: float, latencies: list[float],
                      statuses: dict[int, int], record_after: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (now := time.perf_counter()) < stop_at:
            try:
                request = make_request()
            except StopIteration:  # a finite feed of requests ran out
                break
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if now >= record_after:
                latencies.append(time.perf_counter() - started)
                status = int(status_line.split()[1])
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(port: int, make_request: Callable[[], bytes], *, connections: int = 50, seconds: float = 5.0,
              warmup: float = 1.0) -> Result:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    record_after = start + warmup
    stop_at = record_after + seconds
    await asyncio.gather(*(_connection(port, make_request, stop_at, latencies, statuses, record_after)
                           for _ in range(connections)))
    return Result(len(latencies), min(seconds, time.perf_counter() - record_after), latencies, statuses)


async def paced(port: int, make_request: Callable[[], bytes], *, rate: float, count: int) -> list[float]:
    """Send `count` requests at a steady `rate` per second (one connection each in turn); return latencies."""
    latencies: list[float] = []
    interval = 1.0 / rate
    begin = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, begin + i * interval - time.perf_counter()))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(make_request())
        status = int((await reader.readline()).split()[1])
        latencies.append(time.perf_counter() - started)
        writer.close()
        if status != 200:
            raise RuntimeError(f"the server answered {status}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
