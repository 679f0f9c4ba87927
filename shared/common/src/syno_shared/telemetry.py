"""OpenTelemetry traces and metrics, exported over OTLP/HTTP when SYNO_OTLP_ENDPOINT is set.

The trace context travels in NATS headers (FastStream's NatsTelemetryMiddleware), so one
workbook is one trace from the file event to the last notification.
"""

from __future__ import annotations

from dataclasses import dataclass

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
