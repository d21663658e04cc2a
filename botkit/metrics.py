"""Prometheus metrics at `GET /metrics`, and optional OpenTelemetry spans.

What is measured, and where it is fed from:

- `botkit_ack_seconds{bot}`: how long the receiver took to answer Chatwoot (deliveries that came from
  Chatwoot, not forged ones). Chatwoot gives up after 5 s and hands the conversation to humans, so the
  buckets reach past 5 s. Fed by `Receiver.observe`, with
- `botkit_deliveries_total{bot,outcome}`: accepted, duplicate, ignored, and the rejections unauthorized,
  rate_limited, malformed, too_large, not_found, store_error, shutting_down.
- `botkit_queue_waiting`, `botkit_queue_in_flight`, `botkit_queue_oldest_age_seconds`, `botkit_dead_letters_stored`
  and `botkit_store_up`: read from `store.stats()` at scrape time (one cheap query per scrape).
- `botkit_events_total{outcome}` and `botkit_event_seconds{outcome}` (done, retry, dead_letter), and
  `botkit_dead_letters_total{event}`: fed by the worker's `on_outcome`.
- `botkit_handler_seconds{handler}` and `botkit_handler_errors_total{handler}`: each handler of a Bot's chain.
- `botkit_handoffs_total{reason}`: hand-offs to humans (handler, keywords, model, dead_letter, reply_window, suggest).
- `botkit_delivery_failures_total{channel,reason}`: the bot's messages a channel's provider refused after
  Chatwoot accepted them (`external_error`; reason `window` when outside the messaging window, else `refused`).
- `botkit_chatwoot_requests_total{endpoint,status}`, `botkit_chatwoot_request_seconds{endpoint}`,
  `botkit_chatwoot_retries_total{endpoint}` and `botkit_chatwoot_throttle_wait_seconds_total`: each attempt
  of an API call by path template (never a token), its HTTP status (or `unreachable`, `no_answer`), the
  retries, and the time spent waiting on the client's own rate limit.

Several uvicorn processes (`botkit serve --workers N`): set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
writable by the server. Every process then writes its counts there and `/metrics`, whichever process
answers it, adds up all of them (prometheus_client's multiprocess collector). `botkit serve` empties the
directory at start. Without the variable each process counts on its own.

`BOTKIT_METRICS=false` turns the endpoint and the counting off.

Traces (OpenTelemetry) are botkit/tracing.py's; `handling()` opens each handler's span.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from botkit import logs
from botkit.config import Settings
from botkit.store.base import QueueStats
from botkit.tracing import span

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WORK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Outcomes of deliveries that passed authentication or could not be checked: forged ones stay out of the
# ack histogram so a flood cannot hide how fast real deliveries are acked.
ACK_OUTCOMES = frozenset({"accepted", "duplicate", "ignored", "malformed", "store_error", "shutting_down"})


class NullMetrics:
    """The hooks with nothing behind them: what code without a metrics-enabled runtime calls."""

    enabled = False

    def delivery(self, bot: str, outcome: str, seconds: float) -> None: ...

    def event(self, outcome: str, job: Any, seconds: float) -> None: ...

    @contextlib.contextmanager
    def handling(self, handler: str) -> Iterator[None]:
        with logs.bind(handler=handler), span("botkit.handler", handler=handler):
            yield

    def handoff(self, reason: str) -> None: ...

    def delivery_failed(self, channel: str, reason: str) -> None: ...

    def chatwoot_request(self, endpoint: str, status: str, seconds: float) -> None: ...

    def chatwoot_retry(self, endpoint: str) -> None: ...

    def chatwoot_throttled(self, seconds: float) -> None: ...


NULL = NullMetrics()


class Metrics(NullMetrics):
    """One app's metrics, in `registry` (a fresh one by default, so two apps never share counts)."""

    enabled = True

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.ack_seconds = Histogram("botkit_ack_seconds", "Time to answer a delivery from Chatwoot (it waits 5 s).",
                                     ["bot"], buckets=ACK_BUCKETS, registry=r)
        self.deliveries = Counter("botkit_deliveries", "Deliveries received, by outcome.", ["bot", "outcome"],
                                  registry=r)
        self.events = Counter("botkit_events", "Events the worker ran, by outcome.", ["outcome"], registry=r)
        self.event_seconds = Histogram("botkit_event_seconds", "Time the bot took over one event.", ["outcome"],
                                       buckets=WORK_BUCKETS, registry=r)
        self.dead_lettered = Counter("botkit_dead_letters", "Events that became dead letters.", ["event"],
                                     registry=r)
        self.handler_seconds = Histogram("botkit_handler_seconds", "Time in each handler.", ["handler"],
                                         buckets=WORK_BUCKETS, registry=r)
        self.handler_errors = Counter("botkit_handler_errors", "Handler calls that raised.", ["handler"],
                                      registry=r)
        self.handoffs = Counter("botkit_handoffs", "Conversations handed to humans, by reason.", ["reason"],
                                registry=r)
        self.delivery_failures = Counter("botkit_delivery_failures", "Bot messages a channel refused, by channel.",
                                         ["channel", "reason"], registry=r)
        self.chatwoot_requests = Counter("botkit_chatwoot_requests", "Chatwoot API attempts by endpoint and status.",
                                         ["endpoint", "status"], registry=r)
        self.chatwoot_seconds = Histogram("botkit_chatwoot_request_seconds", "Time of one Chatwoot API attempt.",
                                          ["endpoint"], buckets=WORK_BUCKETS, registry=r)
        self.chatwoot_retries = Counter("botkit_chatwoot_retries", "Chatwoot API attempts repeated.", ["endpoint"],
                                        registry=r)
        self.chatwoot_throttle = Counter("botkit_chatwoot_throttle_wait_seconds",
                                         "Seconds spent waiting on the client's own rate limit.", registry=r)
        self.queue = QueueCollector()
        self.registry.register(self.queue)
        self._delivery_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._event_children: dict[str, tuple[Any, Any]] = {}

    # hooks --------------------------------------------------------------------------------------------
    def delivery(self, bot: str, outcome: str, seconds: float) -> None:
        """Receiver.observe: on the ack path, so the label lookups are cached."""
        children = self._delivery_children.get((bot, outcome))
        if children is None:
            histogram = self.ack_seconds.labels(bot) if outcome in ACK_OUTCOMES else None
            children = self._delivery_children[(bot, outcome)] = (self.deliveries.labels(bot, outcome), histogram)
        children[0].inc()
        if children[1] is not None:
            children[1].observe(seconds)

    def event(self, outcome: str, job: Any, seconds: float) -> None:
        """Worker.on_outcome: done, retry or dead_letter."""
        children = self._event_children.get(outcome)
        if children is None:
            children = self._event_children[outcome] = (self.events.labels(outcome), self.event_seconds.labels(outcome))
        children[0].inc()
        children[1].observe(seconds)
        if outcome == "dead_letter":
            self.dead_lettered.labels(job.event).inc()

    @contextlib.contextmanager
    def handling(self, handler: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with logs.bind(handler=handler), span("botkit.handler", handler=handler):
                yield
        except Exception as exc:
            if getattr(exc, "handler_error", True):  # bursts.Stale ends a turn without a fault
                self.handler_errors.labels(handler).inc()
            raise
        finally:
            self.handler_seconds.labels(handler).observe(time.perf_counter() - started)

    def handoff(self, reason: str) -> None:
        self.handoffs.labels(reason).inc()

    def delivery_failed(self, channel: str, reason: str) -> None:
        self.delivery_failures.labels(channel, reason).inc()

    def chatwoot_request(self, endpoint: str, status: str, seconds: float) -> None:
        self.chatwoot_requests.labels(endpoint, status).inc()
        self.chatwoot_seconds.labels(endpoint).observe(seconds)

    def chatwoot_retry(self, endpoint: str) -> None:
        self.chatwoot_retries.labels(endpoint).inc()

    def chatwoot_throttled(self, seconds: float) -> None:
        self.chatwoot_throttle.inc(seconds)

    # the scrape ---------------------------------------------------------------------------------------
    def render(self, stats: QueueStats | None) -> tuple[bytes, str]:
        """The exposition text, with the queue as `stats` shows it (None: the store did not answer)."""
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(QueueCollector(stats))
            return generate_latest(registry), CONTENT_TYPE_LATEST
        self.queue.stats = stats  # no await between this and the render: concurrent scrapes cannot mix
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class QueueCollector:
    """The store's queue as gauges, from the snapshot taken for this scrape."""

    def __init__(self, stats: QueueStats | None = None) -> None:
        self.stats = stats

    def describe(self) -> list[Any]:
        return []  # the families depend on the snapshot; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("botkit_store_up", "1 when the store answered this scrape.",
                                value=0 if self.stats is None else 1)
        if self.stats is None:
            return
        s = self.stats
        yield GaugeMetricFamily("botkit_queue_waiting", "Events queued, not in flight.", value=s.waiting)
        yield GaugeMetricFamily("botkit_queue_in_flight", "Events being handled now.", value=s.in_flight)
        yield GaugeMetricFamily("botkit_queue_oldest_age_seconds", "Age of the oldest queued event.",
                                value=s.oldest_age)
        yield GaugeMetricFamily("botkit_dead_letters_stored", "Dead letters waiting for replay or drop.",
                                value=s.dead_letters)


def metrics_from_settings(settings: Settings) -> Metrics | None:
    """The app's metrics, or None when BOTKIT_METRICS=false."""
    return Metrics() if settings.botkit_metrics else None


def prepare_multiprocess_dir() -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the processes start, so counts of an earlier run do not add up."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
