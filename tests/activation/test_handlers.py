"""The activation stage's work on one forecast.published, against the embedded PostgreSQL (dbt-built marts and
forecasts from conftest), a local JSON webhook and a lineage file: what people receive and what is recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from activation_events import forecast_event
from activation_fakes import LocalHTTPServer, Request, local_service
from activation_marts import FORECAST_RUN, SNAPSHOT_MARTS
from pydantic import SecretStr

from syno_activation.handlers import activate
from syno_activation.settings import ActivationOptions, ActivationSettings, LineageSettings, MetabaseSettings
from syno_shared import bus
from syno_shared.events import ActivationCompleted, DeliveryResult

pytestmark = pytest.mark.integration

# Worked out from the raw lines of activation_marts. FR in Q3 2025: 245.5K from Acme 125K, Dune 50K, Beta 30K,
# Cielo 30K and Hugo 10.5K (Q2: 180K); run-f1 forecasts 184K for Q4. Acme's own SVR-RM forecast is 130K.
REGION_FR = (
    "- FR in Q3 2025: revenue $245.5K (QoQ +36.4%, YoY n/a) from 5 active customers. "
    "Accounts: 2 growing, 1 declining, 0 dormant, 1 new. Cross-sell: 3 SVR-RM buyers without C2 (Acme, Dune, Hugo). "
    "Next quarter (Q4 2025) forecast $184.0K (-25.1% vs Q3 2025): forecast risk."
)
# DE in Q3 2025: Fjord 10K and Gala 5K (Q2: 30K); Edda bought 8K in Q3 2024 and nothing since.
REGION_DE = (
    "- DE in Q3 2025: revenue $15.0K (QoQ -50.0%, YoY +87.5%) from 2 active customers. "
    "Accounts: 0 growing, 2 declining, 1 dormant, 0 new. Re-engage dormant: Edda. No forecast for Q4 2025."
)
ACME = (
    "- Acme (FR, SVR-RM buyer) in Q3 2025: revenue $125.0K (QoQ +25.0%, YoY n/a), growing. "
    "Buys SVR-RM without C2: cross-sell C2. Next quarter (Q4 2025) SVR-RM forecast $130.0K."
)
HUGO = (
    "- Hugo (FR, SVR-RM buyer) in Q3 2025: revenue $10.5K (QoQ +5.0%, YoY n/a), C2 cross-sell candidate. "
    "Buys SVR-RM without C2: cross-sell C2."
)
# Q3 2025's opportunities, worked out in test_warehouse: FR's SVR-RM buyers (material) first, then the anecdotal
# cells (Cielo alone in FR / Desktop only, Edda and Fjord in DE / Other).
OPPORTUNITIES = (
    "**Top opportunities (Q3 2025)**:",
    "1. FR / SVR-RM buyer: Cross-sell C2 BACKUP BUSINESS to 3 SVR-RM buyers without C2 (0.0% of FR SVR-RM buyers "
    "have C2). $30.0K at stake, medium confidence. Accounts: Acme, Dune, Hugo.",
    "2. FR / SVR-RM buyer: Protect the Q4 2025 pipeline of 3 accounts: forecast -$22.7K vs Q3 2025. $22.7K at "
    "stake, medium confidence. Accounts: Dune, Beta, Hugo.",
    "3. Beta (FR / SVR-RM buyer): Win back 1 declining account: -$20.0K (-40.0%) vs Q2 2025. $20.0K at stake, "
    "high confidence.",
    "4. Cielo (FR / Desktop only): Upsell rackmount (T1) to 1 growing desktop buyer: +50.0% vs Q2 2025. $50.0K at "
    "stake, low confidence (anecdotal).",
    "5. Fjord (DE / Other): Win back 1 declining account: -$10.0K (-50.0%) vs Q2 2025. $10.0K at stake, low "
    "confidence (anecdotal).",
    "All 8 opportunities of Q3 2025, with their accounts: [opportunities](http://metabase.local/dashboard/9)",
    "",
    "**Regions (Q3 2025)**:",
)
# C2: Beta's Backup (FR) 10K in Q2 and in Q3, Gala's Storage (DE) 10K then 5K. SVR-RM buyers: Acme, Beta and
# Hugo in Q2 (Beta with C2), Acme, Dune and Hugo in Q3 (Beta's return cancels its purchase).
C2_LINES = (
    "- C2 revenue in Q3 2025: $15.0K (QoQ -25.0%).",
    "- Largest movers by service family: STORAGE -$5.0K (-50.0%).",
    "- Largest movers by region: DE -$5.0K (-50.0%).",
    "- C2 attach rate among SVR-RM customers: 0.0% (0 of 3), -33.3 pts QoQ.",
    "- C2 customers: 2 active, 0 new, 0 returning, 0 lost.",
)


async def test_a_forecast_becomes_storylines_a_summary_lineage_and_a_recorded_completion(
    pool: asyncpg.Pool, http_server: Callable[..., LocalHTTPServer], tmp_path: Path
) -> None:
    def accept(request: Request) -> tuple[int, Any]:
        return 200, {"ok": True}

    webhook = http_server(accept)
    lineage_file = tmp_path / "lineage.jsonl"
    settings = ActivationSettings(
        activation=ActivationOptions(
            notify_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}/hooks/syno")],
            dashboard_links={"opportunities": "http://metabase.local/dashboard/9"},
            lineage=LineageSettings(transport="file", file_path=lineage_file),
        )
    )
    service = local_service(pool, settings)
    event = forecast_event().model_copy(update={"forecast_run_id": FORECAST_RUN, "marts_schema": SNAPSHOT_MARTS})

    outcome = await activate(service, event)

    expected = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=10,
        dashboards=[],  # Metabase is off by default
        notifications=[DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1")],
        lineage=DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events"),
    )
    assert outcome.subject == bus.ACTIVATION_COMPLETED
    assert outcome.event.model_dump(exclude={"produced_at"}) == expected.model_dump(exclude={"produced_at"})

    [request] = webhook.requests
    body = request.json["message"]
    lines = body.splitlines()
    assert lines[: len(OPPORTUNITIES)] == list(OPPORTUNITIES)  # the summary leads with what to act on
    assert all(line in lines for line in (REGION_DE, REGION_FR, ACME, HUGO, *C2_LINES))

    assert (
        await pool.fetchval(
            "select count(*) from activation.storylines where snapshot_id = $1 and region_narrative is not null",
            event.snapshot_id,
        )
        == 8
    )  # the eight Q3 2025 opportunities
    completion = await pool.fetchrow(
        "select output_subject, output_event::text from ops.stage_completions where snapshot_id = $1"
        " and stage = 'activation'",
        event.snapshot_id,
    )
    assert completion["output_subject"] == bus.ACTIVATION_COMPLETED
    assert ActivationCompleted.model_validate_json(completion["output_event"]) == outcome.event
    assert await pool.fetchval("select storylines from ops.activation_log where run_id = $1", event.run_id) == 10
    assert len(lineage_file.read_text().splitlines()) == 4
    assert json.loads(lineage_file.read_text().splitlines()[-1])["job"]["name"] == "syno.activation"


@pytest.mark.parametrize(
    ("publication", "summaries", "lineage_events"),
    [("published", 1, 4), ("kept_aside_older", 1, 4), ("rehearsal", 0, 0)],
)
async def test_only_a_snapshot_the_dashboards_show_refreshes_them_and_a_rehearsal_sends_nothing(
    pool: asyncpg.Pool,
    http_server: Callable[..., LocalHTTPServer],
    tmp_path: Path,
    publication: str,
    summaries: int,
    lineage_events: int,
) -> None:
    """Kept aside (older data): people are told, the dashboards still show the newer snapshot, so no refresh
    (its sentinel could never confirm this snapshot). A rehearsal (`syno smoke`): storylines, nothing sent."""

    def accept(request: Request) -> tuple[int, Any]:
        return 200, {"ok": True}

    webhook, metabase = http_server(accept), http_server(accept)
    lineage_file = tmp_path / "lineage.jsonl"
    settings = ActivationSettings(
        activation=ActivationOptions(
            notify_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}/hooks/syno")],
            metabase=MetabaseSettings(
                mode="invalidate", url=f"http://127.0.0.1:{metabase.port}", api_key=SecretStr("k"), database_id=2
            ),
            lineage=LineageSettings(transport="file", file_path=lineage_file),
        )
    )
    event = forecast_event().model_copy(
        update={"forecast_run_id": FORECAST_RUN, "marts_schema": SNAPSHOT_MARTS, "publication": publication}
    )

    outcome = await activate(local_service(pool, settings), event)

    assert len(webhook.requests) == summaries
    assert len(metabase.requests) == (1 if publication == "published" else 0)
    assert len(outcome.event.dashboards) == (1 if publication == "published" else 0)
    assert (len(lineage_file.read_text().splitlines()) if lineage_file.exists() else 0) == lineage_events
    assert outcome.event.storylines == 10  # the storylines are written either way
