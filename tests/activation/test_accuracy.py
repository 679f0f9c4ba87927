"""Forecast accuracy over time: each forecast run's holdout sMAPE per cohort against the previous published run's,
and the run summary says which cohort got worse beyond `accuracy_margin`, with both figures (issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
import pytest
from activation_events import forecast_event
from activation_fakes import LocalHTTPServer, Request, local_service
from activation_marts import FORECAST_RUN, SNAPSHOT_MARTS
from pydantic import SecretStr

from syno_activation.accuracy import AccuracyDrop, PreviousAccuracy, accuracy_drops
from syno_activation.handlers import activate
from syno_activation.settings import ActivationOptions, ActivationSettings
from syno_shared.events import CohortForecast, ForecastPublished

Q3, Q4 = date(2025, 7, 1), date(2025, 10, 1)


def cohort(name: str, smape: float | None) -> CohortForecast:
    return CohortForecast(
        cohort=name, series_count=3, holdout_mape=None, holdout_smape=smape, baseline_smape=None, is_threshold_met=True
    )


def test_a_cohort_is_worse_only_beyond_the_margin_and_only_when_both_runs_have_its_accuracy() -> None:
    """Margin 5 points: customer 20.0 -> 25.5 is worse (25.5 > 25.0); overall 10.0 -> 15.0 is exactly the margin, not
    reported; c2 got better; region has no sMAPE now; a new cohort has nothing to compare with."""
    previous = PreviousAccuracy(
        "forecast-1", Q3, {"customer": 20.0, "overall": 10.0, "c2": 30.0, "region": 12.0, "gone": 1.0}
    )
    now = [cohort("overall", 15.0), cohort("customer", 25.5), cohort("c2", 20.0), cohort("region", None),
           cohort("new", 90.0)]  # fmt: skip

    assert accuracy_drops(now, previous, margin=5.0) == (AccuracyDrop("customer", 25.5, 20.0, Q3, 5.0),)
    assert accuracy_drops(now, previous, margin=0.0) == (
        AccuracyDrop("overall", 15.0, 10.0, Q3, 0.0),
        AccuracyDrop("customer", 25.5, 20.0, Q3, 0.0),
    )
    assert accuracy_drops(now, None, margin=0.0) == ()


def run(
    run_id: str, forecast_run_id: str, target: date, smape: dict[str, float], publication: str
) -> ForecastPublished:
    return forecast_event().model_copy(
        update={
            "run_id": run_id,
            "forecast_run_id": forecast_run_id,
            "marts_schema": SNAPSHOT_MARTS,
            "target_quarter": target,
            "publication": publication,
            "cohorts": [cohort(name, value) for name, value in smape.items()],
        }
    )


def accept(request: Request) -> tuple[int, Any]:
    return 200, {"ok": True}


@pytest.mark.integration
async def test_the_summary_says_which_cohort_got_worse_than_the_previous_published_run(
    pool: asyncpg.Pool, http_server: Callable[..., LocalHTTPServer]
) -> None:
    """Run 1 (Q3 2025, published): customer 20.0%, overall 10.0%; nothing to compare with. Run 2 (its snapshot kept
    aside as older): customer 60.0%, 40 points worse than run 1's, which its summary says; but no run is compared
    with it. Run 3 (Q4 2025): customer 31.5%, 11.5 points worse than run 1's (beyond the 10-point margin), overall
    12.0% (2 points: within it). A replay of run 3 still compares with run 1, not with itself."""
    webhook = http_server(accept)
    settings = ActivationSettings(
        activation=ActivationOptions(
            summary_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}/summaries")], accuracy_margin=10.0
        )
    )
    service = local_service(pool, settings)
    first = run("run-1", FORECAST_RUN, Q3, {"customer": 20.0, "overall": 10.0}, "published")
    older = run("run-2", "forecast-older", Q3, {"customer": 60.0, "overall": 10.0}, "kept_aside_older")
    third = run("run-3", "forecast-3", Q4, {"customer": 31.5, "overall": 12.0}, "published")

    for event in (first, older, third, third.model_copy(update={"run_id": "run-3-replayed"})):
        await activate(service, event)

    def worse(smape: str) -> str:
        return (
            f"- customer: accuracy got worse, sMAPE {smape} against 20.0% in the previous published run (forecast for "
            "Q3 2025), more than the 10.0-point margin"
        )

    sent = [request.json for request in webhook.requests if request.json is not None]
    assert [[line for line in json["message"].splitlines() if "accuracy got worse" in line] for json in sent] == [
        [],
        [worse("60.0%")],
        [worse("31.5%")],
        [worse("31.5%")],
    ]
    assert [json["type"] for json in sent] == ["success", "warning", "warning", "warning"]
    recorded = await pool.fetch(
        "select forecast_run_id, cohort, holdout_smape, is_published from activation.forecast_accuracy"
        " order by recorded_at, cohort"
    )
    assert [tuple(row.values()) for row in recorded] == [
        (FORECAST_RUN, "customer", 20.0, True),
        (FORECAST_RUN, "overall", 10.0, True),
        ("forecast-older", "customer", 60.0, False),
        ("forecast-older", "overall", 10.0, False),
        ("forecast-3", "customer", 31.5, True),
        ("forecast-3", "overall", 12.0, True),
    ]
