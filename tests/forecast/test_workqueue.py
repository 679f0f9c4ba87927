"""The work queue's batches, without a server: at most N series each, interleaved, unchanged over the wire."""

from __future__ import annotations

from datetime import date

from syno_forecast.series import QuarterlySeries
from syno_forecast.workqueue import WorkBatch, make_batches, split_series

START = date(2023, 1, 1)


def series(count: int) -> list[QuarterlySeries]:
    return [
        QuarterlySeries(f"customer|C{number}|quantity", START, (1.0, 2.0, float(number)), None, 0)
        for number in range(count)
    ]


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
    assert [(batch.batch_number, batch.batch_count, len(batch.series)) for batch in received] == [(0, 2, 3), (1, 2, 3)]
    assert sorted(
        (item.to_series() for batch in received for item in batch.series), key=lambda item: item.series_id
    ) == sorted(sent, key=lambda item: item.series_id)
