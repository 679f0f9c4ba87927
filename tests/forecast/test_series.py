"""Quarterly series from the long frame: zero-filled gaps, partial quarter kept apart, bad frames rejected."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from syno_forecast.series import QuarterlySeries, SeriesFrameError, build_quarterly_series

LAST_COMPLETE = date(2024, 4, 1)  # Q2 2024 is complete, Q3 2024 is the partial current quarter


def frame(rows: list[tuple[str, date, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64}, orient="row")


def test_gaps_become_explicit_zeros_and_partial_quarter_is_actual_to_date() -> None:
    result = build_quarterly_series(
        frame(
            [
                ("b", date(2023, 10, 1), 4.0),
                ("a", date(2023, 7, 1), 1.0),
                ("a", date(2024, 1, 1), 2.0),
                ("a", date(2024, 7, 1), 99.0),  # partial current quarter: never trained on
            ]
        ),
        last_complete_quarter=LAST_COMPLETE,
    )
    assert result == [
        QuarterlySeries("a", date(2023, 7, 1), (1.0, 0.0, 2.0, 0.0), actual_to_date=99.0, filled_quarters=2),
        QuarterlySeries("b", date(2023, 10, 1), (4.0, 0.0, 0.0), actual_to_date=None, filled_quarters=2),
    ]


def test_rows_in_one_quarter_are_summed_dates_normalised_and_nulls_count_as_zero() -> None:
    result = build_quarterly_series(
        frame(
            [
                ("a", date(2024, 1, 15), 2.0),
                ("a", date(2024, 3, 31), 3.0),
                ("a", date(2024, 5, 2), None),
            ]
        ),
        last_complete_quarter=date(2024, 6, 30),  # any day of the quarter will do
    )
    assert result == [QuarterlySeries("a", date(2024, 1, 1), (5.0, 0.0), actual_to_date=None, filled_quarters=0)]


def test_series_with_only_partial_quarter_data_has_no_history() -> None:
    result = build_quarterly_series(frame([("new", date(2024, 8, 1), 7.0)]), last_complete_quarter=LAST_COMPLETE)
    assert result == [QuarterlySeries("new", None, (), actual_to_date=7.0, filled_quarters=0)]
    assert result[0].quarters == ()


def test_quarters_lists_each_complete_quarter() -> None:
    series = QuarterlySeries("a", date(2023, 10, 1), (1.0, 2.0, 3.0), None, 0)
    assert series.quarters == (date(2023, 10, 1), date(2024, 1, 1), date(2024, 4, 1))


def test_rows_after_the_current_quarter_are_rejected() -> None:
    with pytest.raises(SeriesFrameError, match="after the current quarter 2024-07-01"):
        build_quarterly_series(frame([("a", date(2024, 10, 1), 1.0)]), last_complete_quarter=LAST_COMPLETE)


def test_nan_values_are_rejected() -> None:
    with pytest.raises(SeriesFrameError, match="NaN or infinite"):
        build_quarterly_series(frame([("a", date(2024, 1, 1), float("nan"))]), last_complete_quarter=LAST_COMPLETE)


def test_missing_columns_and_wrong_types_are_rejected() -> None:
    with pytest.raises(SeriesFrameError, match="lacks columns"):
        build_quarterly_series(pl.DataFrame({"series_id": ["a"]}), last_complete_quarter=LAST_COMPLETE)
    with pytest.raises(SeriesFrameError, match="must be Date"):
        build_quarterly_series(
            pl.DataFrame({"series_id": ["a"], "quarter": ["2024-01-01"], "value": [1.0]}),
            last_complete_quarter=LAST_COMPLETE,
        )
