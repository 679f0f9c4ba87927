"""The activation stage's work on one forecast.published, against the embedded PostgreSQL (sample marts and
forecasts from conftest), a local JSON webhook and a lineage file: what people receive and what is recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from activation_events import forecast_event
from activation_fakes import LocalHTTPServer, Request
from faststream.nats import NatsBroker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from syno_activation.handlers import activate
from syno_activation.settings import ActivationServiceSettings, ActivationSettings, LineageSettings
from syno_shared import bus
from syno_shared.events import ActivationCompleted, DeliveryResult
from syno_shared.service import Service
from syno_shared.telemetry import Telemetry

pytestmark = pytest.mark.integration

# FR's Q4 forecast of run-f1 is 184K against 230K in Q3; Acme's own SVR-RM forecast is 130K.
REGION_FR = (
    "- FR in Q3 2025: revenue $230.0K (QoQ +35.3%, YoY n/a) from 4 active customers. "
    "Accounts: 2 growing, 1 declining, 0 dormant, 1 new. Cross-sell: 2 SVR-RM buyers without C2 (Acme, Dune). "
    "Next quarter (Q4 2025) forecast $184.0K (-20.0% vs Q3 2025): forecast risk."
)
ACME = (
    "- Acme (FR, SVR-RM buyer) in Q3 2025: revenue $120.0K (QoQ +20.0%, YoY n/a), growing. "
    "Buys SVR-RM without C2: cross-sell C2. Next quarter (Q4 2025) SVR-RM forecast $130.0K."
)
# SVR-RM buyers in Q3: Acme and Dune, neither with C2 (Q2: Acme alone, no C2); Beta, the one C2 adopter,
# bought in Q2 and Q3.
C2_LINES = (
    "- C2 revenue in Q3 2025: $100.0K (QoQ +11.1%).",
    "- C2 attach rate among SVR-RM customers: 0.0% (0 of 2), +0.0 pts QoQ.",
    "- C2 customers: 1 active, 0 new, 0 returning, 0 lost.",
)


async def test_a_forecast_becomes_storylines_a_summary_lineage_and_a_recorded_completion(
    pool: asyncpg.Pool, http_server: Callable[..., LocalHTTPServer], tmp_path: Path
) -> None:
    def accept(request: Request) -> tuple[int, Any]:
        return 200, {"ok": True}

    webhook = http_server(accept)
    lineage_file = tmp_path / "lineage.jsonl"
    settings = ActivationServiceSettings(
        activation=ActivationSettings(
            notify_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}/hooks/syno")],
            lineage=LineageSettings(transport="file", file_path=lineage_file),
        )
    )
    service = Service(
        name="activation",
        settings=settings,
        broker=NatsBroker(),
        telemetry=Telemetry(tracer_provider=TracerProvider(), meter_provider=MeterProvider()),
        pool_holder=[pool],
    )
    event = forecast_event().model_copy(update={"forecast_run_id": "run-f1"})

    outcome = await activate(service, event)

    expected = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=6,
        dashboards=[],  # Metabase is off by default
        notifications=[DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1")],
        lineage=DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events"),
    )
    assert outcome.subject == bus.ACTIVATION_COMPLETED
    assert outcome.event.model_dump(exclude={"produced_at"}) == expected.model_dump(exclude={"produced_at"})

    [request] = webhook.requests
    body = request.json["message"]
    assert REGION_FR in body.splitlines()
    assert ACME in body.splitlines()
    assert all(line in body.splitlines() for line in C2_LINES)

    assert (
        await pool.fetchval(
            "select count(*) from activation.storylines where snapshot_id = $1 and region_narrative is not null",
            event.snapshot_id,
        )
        == 3
    )  # the three Q3 rows
    completion = await pool.fetchrow(
        "select output_subject, output_event::text from ops.stage_completions where snapshot_id = $1"
        " and stage = 'activation'",
        event.snapshot_id,
    )
    assert completion["output_subject"] == bus.ACTIVATION_COMPLETED
    assert ActivationCompleted.model_validate_json(completion["output_event"]) == outcome.event
    assert await pool.fetchval("select storylines from ops.activation_log where run_id = $1", event.run_id) == 6
    assert len(lineage_file.read_text().splitlines()) == 4
    assert json.loads(lineage_file.read_text().splitlines()[-1])["job"]["name"] == "syno.activation"
