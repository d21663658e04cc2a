"""OpenTelemetry traces that cross the queue.

The receiver's `botkit.webhook` span is stored with the event as a W3C `traceparent` (`Job.trace`); the
worker, in another process and maybe much later, continues that trace: `botkit.event`, then a
`botkit.handler` span per handler, a `botkit.chatwoot` span per Chatwoot request, and the model and
knowledge-base calls inside them. Outgoing requests carry `traceparent`, and log lines carry `trace_id`.

On when the `otel` extra is installed (`pip install 'botkit[otel]'`: the SDK and its OTLP exporter) and
OpenTelemetry's standard variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (OTLP over HTTP/protobuf), or `OTEL_TRACES_EXPORTER=otlp|console`.
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off. The SDK reads the rest itself
(`OTEL_SERVICE_NAME`, default here `botkit`; `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`,
`OTEL_EXPORTER_OTLP_HEADERS`). A tracer provider the process already has (e.g. under `opentelemetry-instrument`)
is used as it is. Off, each function here is one check of a module global, so the ack path pays nothing
(bench/ack_cpu.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

log = logging.getLogger("botkit")

_tracer: Any = None  # an opentelemetry Tracer once setup() turned tracing on
_propagator: Any = None
_NO_SPAN = contextlib.nullcontext()


def wanted() -> str | None:
    """The exporter the environment asks for (`otlp` or `console`), or None when tracing stays off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return None
    if exporter in ("otlp", "console"):
        return exporter
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(os.environ.get(name) for name in endpoints) else None


def setup() -> bool:
    """Turn tracing on in this process when the environment asks for it (see the module docstring); True if
    on. Called once per process where its logging is configured; calling again changes nothing."""
    global _tracer, _propagator
    if _tracer is not None:
        return True
    exporter_name = wanted()
    if exporter_name is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        log.warning("OTEL_* variables ask for traces but OpenTelemetry's SDK is not installed; "
                    "install botkit[otel] (tracing stays off)")
        return False
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # nobody set one up: botkit does
        if exporter_name == "console":
            exporter: Any = ConsoleSpanExporter()
        else:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.warning("OTEL_* variables ask for OTLP traces but the OTLP exporter is not installed; "
                            "install botkit[otel] (tracing stays off)")
                return False
            exporter = OTLPSpanExporter()
        # process.pid tells the receiver's spans from the worker's (`botkit serve` runs them in two processes)
        defaults: dict[str, Any] = {"process.pid": os.getpid()}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            defaults["service.name"] = "botkit"
        provider = TracerProvider(resource=Resource.create(defaults))  # flushes at exit by itself
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    _propagator = TraceContextTextMapPropagator()
    _tracer = trace.get_tracer("botkit")
    return True


def span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A span, the current one's child, while the block runs; None attributes are left out. Off: a no-op."""
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None})


def traceparent() -> str | None:
    """The current span as a W3C `traceparent` value, to store with an event; None when off."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def continued(parent: str | Mapping[str, str] | None) -> contextlib.AbstractContextManager[Any]:
    """Spans started inside the block continue the trace of `parent`: a `traceparent` (e.g. `Job.trace`), or
    request headers that may hold one (read only when tracing is on). Off, or with no parent: a shared no-op."""
    if _tracer is None:
        return _NO_SPAN
    if isinstance(parent, Mapping):
        parent = parent.get("traceparent")
    return _continued(parent) if parent else _NO_SPAN


@contextlib.contextmanager
def _continued(parent: str) -> Iterator[None]:
    from opentelemetry import context

    token = context.attach(_propagator.extract({"traceparent": parent}))
    try:
        yield
    finally:
        context.detach(token)


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add `traceparent` (and `tracestate`) for the current span to outgoing request headers; returns them."""
    if _tracer is not None:
        _propagator.inject(headers)
    return headers


def trace_id() -> str | None:
    """The current trace's id as 32 hex digits, for log lines; None when off or outside any span."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
