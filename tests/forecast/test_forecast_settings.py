"""Forecast settings from the environment: sMAPE thresholds in percent, refused when they cannot be meant."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from syno_forecast.settings import ForecastSettings


def test_smape_thresholds_come_from_the_environment_in_percent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    assert ForecastSettings().forecast.smape_thresholds == {
        "overall": 25.0,
        "customer": 50.0,
        "c2": 50.0,
        "region": 25.0,
    }
    monkeypatch.setenv("SYNO_FORECAST__SMAPE_THRESHOLDS", '{"overall": 20, "c2": 80}')
    assert ForecastSettings().forecast.smape_thresholds == {"overall": 20.0, "c2": 80.0}


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
        ForecastSettings()
