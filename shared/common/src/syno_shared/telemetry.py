"""OpenTelemetry traces and metrics, exported over OTLP/HTTP when SYNO_OTLP_ENDPOINT is set.

The trace context travels in NATS headers (FastStream's NatsTelemetryMiddleware), so one
workbook is one trace from the file event to the last notification.

Every metric of our own is declared here, through `counter`, `histogram` and `observable_gauge`, with
the label names it is recorded with; a recording with other labels raises. The declarations are kept in
`DECLARED`, which the dashboard and alert-rule check (tests/deploy) compares with what Grafana queries,
so a panel can never chart a name or a label the code does not emit. `STAGE_DURATION` is the one
duration every stage records (syno_shared.stage), by stage and outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        """Flush what is buffered; called on the way out so the last spans are not lost."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(service: str, otlp_endpoint: str | None) -> Telemetry:
    resource = Resource.create({"service.name": f"syno-{service}", "service.namespace": "syno"})
    tracer_provider = TracerProvider(resource=resource)
    readers = []
    if otlp_endpoint:
        base = otlp_endpoint.rstrip("/")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces"), schedule_delay_millis=500)
        )
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=10_000
            )
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    # Global too, so spans opened by service code and log lines share the trace.
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)


InstrumentKind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class Declared:
    """One metric as the code records it: OpenTelemetry name, kind, unit and the label names it carries."""

    name: str
    kind: InstrumentKind
    unit: str
    labels: tuple[str, ...]
    description: str


DECLARED: dict[str, Declared] = {}
"""Every metric declared through this module in this process, by name (the instruments themselves are OTel's)."""


def _declare(spec: Declared) -> None:
    known = DECLARED.setdefault(spec.name, spec)
    if known != spec:
        raise ValueError(f"metric {spec.name} declared twice, differently: {known} and {spec}")


def _checked(spec: Declared, attributes: Mapping[str, str]) -> Mapping[str, str]:
    if set(attributes) != set(spec.labels):
        raise ValueError(
            f"metric {spec.name} is declared with labels {spec.labels}, recorded with {sorted(attributes)}"
        )
    return attributes


@dataclass(frozen=True)
class Counter:
    spec: Declared
    instrument: metrics.Counter

    def add(self, amount: int | float, attributes: Mapping[str, str]) -> None:
        self.instrument.add(amount, _checked(self.spec, attributes))


@dataclass(frozen=True)
class Histogram:
    spec: Declared
    instrument: metrics.Histogram

    def record(self, amount: int | float, attributes: Mapping[str, str]) -> None:
        self.instrument.record(amount, _checked(self.spec, attributes))


def counter(meter: str, name: str, *, labels: Iterable[str], description: str, unit: str = "") -> Counter:
    spec = Declared(name, "counter", unit, tuple(labels), description)
    _declare(spec)
    return Counter(spec, metrics.get_meter(meter).create_counter(name, unit=unit, description=description))


def histogram(meter: str, name: str, *, labels: Iterable[str], description: str, unit: str = "") -> Histogram:
    spec = Declared(name, "histogram", unit, tuple(labels), description)
    _declare(spec)
    return Histogram(spec, metrics.get_meter(meter).create_histogram(name, unit=unit, description=description))


def observable_gauge(
    meter: str,
    name: str,
    observe: Callable[[], Iterable[tuple[float, Mapping[str, str]]]],
    *,
    labels: Iterable[str],
    description: str,
    unit: str = "",
) -> Declared:
    """A gauge read when metrics are collected: `observe()` gives (value, labels) pairs."""
    spec = Declared(name, "gauge", unit, tuple(labels), description)
    _declare(spec)

    def callback(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        return [metrics.Observation(value, dict(_checked(spec, attributes))) for value, attributes in observe()]

    metrics.get_meter(meter).create_observable_gauge(name, callbacks=[callback], unit=unit, description=description)
    return spec


STAGE_OUTCOMES = ("succeeded", "failed", "retrying", "skipped", "interrupted")
STAGE_DURATION = histogram(
    "syno.stage",
    "syno_stage_duration_seconds",
    unit="s",
    labels=("stage", "outcome"),
    description=(
        "Seconds one input took in a stage (run_stage_input), by stage and outcome: " + ", ".join(STAGE_OUTCOMES)
    ),
)
