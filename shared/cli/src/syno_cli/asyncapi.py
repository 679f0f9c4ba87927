"""The event contract as FastStream generates it: docs/asyncapi.yaml, one AsyncAPI 3.0 document for the pipeline.

Each service's app is built (nothing is started or connected) and FastStream reads its typed subscribers
(`Service.subscriber(..., event=Model)`) and publishers (`bus.declare_publishers`); the four brokers go into one
document, so every subject is listed with who publishes it, who consumes it and the event's JSON schema, field
descriptions included. Channels are named `<subject>:from:syno-<service>` for a publisher and
`<subject>:to:<durable consumer>` for a subscriber: one subject, one channel per party, one message schema.

    python -m syno_cli.asyncapi            # rewrite docs/asyncapi.yaml (`just asyncapi`)
    python -m syno_cli.asyncapi --check    # exit 1 when the committed document differs from the code's

The services are imported by name at run time, as `syno services` runs them (`python -m syno_<name>`): the CLI
has no build dependency on them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from faststream.specification import AsyncAPI

from syno_shared import access, events

DOCUMENT = Path(__file__).resolve().parents[4] / "docs" / "asyncapi.yaml"
# The servers named in the document: the compose deployment's, never whatever this shell is configured with.
NATS_URL = "nats://nats:4222"
PG_DSN = "postgresql://syno@postgres:5432/syno"
SETTINGS_CLASSES = {
    "ingestion": "IngestionSettings",
    "transform": "TransformSettings",
    "forecast": "ForecastSettings",
    "activation": "ActivationSettings",
}
DESCRIPTION = (
    "The syno sell-out pipeline's events on NATS JetStream (one stream, SYNO, file storage): "
    "ingestion -> workbook.landed -> transform -> marts.ready -> forecast -> forecast.published -> activation "
    "-> activation.completed, and pipeline.failed from any stage. Every message carries "
    "`Nats-Msg-Id = <subject>:<snapshot_id>[:<attempt>]` (JetStream drops a repeat inside 24 h) and the W3C "
    "`traceparent`; a replay adds `Syno-Force` and `Syno-Attempt`. Events are versioned by `schema_version` "
    f"(now {events.SCHEMA_VERSION}). Generated from the code by `just asyncapi`: do not edit by hand."
)


def service_broker(name: str) -> Any:
    """The broker of one service's app, built with fixed settings (no .env, no environment)."""
    main = importlib.import_module(f"syno_{name}.main")
    settings_class = getattr(importlib.import_module(f"syno_{name}.settings"), SETTINGS_CLASSES[name])
    settings = settings_class(_env_file=None, nats_url=NATS_URL, pg_dsn=PG_DSN, log_format="json")
    return main.create_app(settings).broker


def pipeline_document() -> str:
    """docs/asyncapi.yaml as the code generates it now."""
    # Each app sets up telemetry; the second one onwards is told the global providers are taken: expected here.
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    brokers = [service_broker(name) for name in access.SERVICES]
    specification = AsyncAPI(
        *brokers,
        title="syno pipeline events",
        version=str(events.SCHEMA_VERSION),
        description=DESCRIPTION,
        schema_version="3.0.0",
    ).to_specification()
    document: dict[str, Any] = specification.to_jsonable()
    # FastStream gathers endpoints in an order that depends on hashing: sorted here, so one code, one document.
    for section in ("channels", "operations"):
        document[section] = dict(sorted(document[section].items()))
    for section in ("messages", "schemas"):
        document["components"][section] = dict(sorted(document["components"][section].items()))
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed document differs")
    parser.add_argument("--output", type=Path, default=DOCUMENT, help=f"where to write it (default {DOCUMENT})")
    arguments = parser.parse_args(argv)
    generated = pipeline_document()
    if arguments.check:
        current = arguments.output.read_text(encoding="utf-8") if arguments.output.exists() else ""
        if current != generated:
            print(f"{arguments.output} differs from what the code generates: run `just asyncapi`", file=sys.stderr)
            return 1
        return 0
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(generated, encoding="utf-8")
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
