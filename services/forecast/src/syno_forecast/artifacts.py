"""A forecast run's artifacts on disk: the training set, the forecasts and where they came from."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from syno_shared.events import MartsReady


def store_artifacts(folder: Path, training_set: pl.DataFrame, forecasts: pl.DataFrame, event: MartsReady) -> None:
    """Write training_set.parquet, forecasts.parquet and provenance.json into ``folder`` (blocking I/O)."""
    folder.mkdir(parents=True, exist_ok=True)
    training_set.write_parquet(folder / "training_set.parquet")
    forecasts.write_parquet(folder / "forecasts.parquet")
    provenance = {
        "snapshot_id": event.snapshot_id,
        "run_id": event.run_id,
        "latest_complete_quarter": str(event.latest_complete_quarter),
        "dbt_invocation_id": event.dbt_invocation_id,
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2))
