"""Fan-out pieces that need no server: batches of series and forecast thresholds from the environment."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from syno_forecast.series import QuarterlySeries
from syno_forecast.settings import ForecastServiceSettings
from syno_forecast.workqueue import WorkBatch, make_batches, split_series

START = date(2023, 1, 1)


def series(count: int) -> list[QuarterlySeries]:
    return [QuarterlySeries(f"customer|C{n}|quantity", START, (1.0, 2.0, float(n)), None, 0) for n in range(count)]


def test_batches_hold_at_most_the_configured_series_interleaved() -> None:
    parts = split_series(series(7), 3)
    assert [[item.series_id.split("|")[1] for item in part] for part in parts] == [
        ["C0", "C3", "C6"],
        ["C1", "C4"],
        ["C2", "C5"],
    ]
    assert split_series([], 3) == []


def test_a_batch_survives_the_wire_unchanged() -> None:
    sent = [*series(5), QuarterlySeries("c2|C2 Storage|revenue_usd", None, (), 12.5, 0)]
    batches = make_batches(
        sent,
        forecast_run_id="f1",
        run_id="r1",
        snapshot_id="s1",
        last_complete_quarter=date(2023, 7, 1),
        batch_series=4,
        models=["ets"],
    )
    received = [WorkBatch.model_validate_json(batch.model_dump_json()) for batch in batches]
    assert received == batches
    assert [(b.batch_no, b.batch_count, len(b.series)) for b in received] == [(0, 2, 3), (1, 2, 3)]
    assert sorted((s.to_series() for b in received for s in b.series), key=lambda s: s.series_id) == sorted(
        sent, key=lambda s: s.series_id
    )


def test_smape_thresholds_come_from_the_environment_in_percent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    assert ForecastServiceSettings().forecast.smape_thresholds == {
        "overall": 25.0,
        "customer": 50.0,
        "c2": 50.0,
        "region": 25.0,
    }
    monkeypatch.setenv("SYNO_FORECAST__SMAPE_THRESHOLDS", '{"overall": 20, "c2": 80}')
    assert ForecastServiceSettings().forecast.smape_thresholds == {"overall": 20.0, "c2": 80.0}


@pytest.mark.parametrize(
    ("value", "complaint"),
    [('{"overall": 0.25}', "not 0.25"), ('{"customers": 40}', "customers"), ('{"c2": 250}', "between 1 and 200")],
)
def test_a_threshold_that_cannot_be_meant_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, complaint: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNO_FORECAST__SMAPE_THRESHOLDS", value)
    with pytest.raises(ValidationError, match=complaint):
        ForecastServiceSettings()
