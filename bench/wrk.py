"""Drive `wrk` (C, from Debian's package) with pre-built requests: a far lighter load generator than
bench/loadgen.py, which needs a whole core of its own at these rates and so takes CPU from the server measured.

Each request is built beforehand (signed, each a new event) into a feed file that `wrk_feed.lua` sends in
order; the feed must be used within the signature's ±300 s window, so build it just before the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk_feed.lua"
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def chosen(generator: str) -> bool:
    """Whether a benchmark's --generator (auto, wrk or python) means wrk: auto takes it when installed."""
    return generator == "wrk" or (generator == "auto" and shutil.which("wrk") is not None)


@dataclass
class Result:
    """What wrk printed: the rate, its latency percentiles (50, 75, 90, 99) and the answers that were not 2xx."""

    requests: int
    seconds: float
    percentiles: dict[float, float]
    not_2xx: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        return self.percentiles[p]

    def line(self, label: str) -> str:
        return (f"{label:<34} {self.rate:>9.0f} req/s   p50 {self.percentile(0.5) * 1000:6.2f} ms   "
                f"p99 {self.percentile(0.99) * 1000:6.2f} ms   not 2xx {self.not_2xx}")


def write_feed(path: Path, make_request: Callable[[], bytes], count: int) -> None:
    with path.open("wb") as feed:
        for _ in range(count):
            request = make_request()
            feed.write(b"%d\n" % len(request) + request)


def run(port: int, feed: Path, *, connections: int = 50, seconds: float = 5.0, threads: int = 1) -> Result:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(SCRIPT),
               f"http://127.0.0.1:{port}/webhook"]
    env = {**os.environ, "WRK_FEED": str(feed), "WRK_THREADS": str(threads)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return parse(out)


def burst(port: int, feed: Path, *, connections: int = 50) -> subprocess.Popen:
    """Start wrk sending each request of the feed once (a burst); the caller decides when it is over and
    terminates it (wrk itself runs out its duration, an hour, with nothing more to send)."""
    command = ["wrk", "-t1", f"-c{connections}", "-d3600s", "-s", str(SCRIPT), f"http://127.0.0.1:{port}/webhook"]
    env = {**os.environ, "WRK_FEED": str(feed), "WRK_THREADS": "1", "WRK_ONCE": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse(out: str) -> Result:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if done is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    seconds = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    percentiles = {int(p) / 100: float(value) * _UNITS[unit]
                   for p, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    not_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result(int(done.group(1)), seconds, percentiles, int(not_2xx.group(1)) if not_2xx else 0)
