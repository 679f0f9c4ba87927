"""Backtest, choose and forecast one series.

The latest ``horizon`` complete quarters are held out; every eligible candidate is fitted on the rest and
scored (MAPE, sMAPE, MASE) on its point forecast; the lowest sMAPE wins (ties or undefined -> MASE -> the
simpler model); the winner is refitted on every complete quarter (on a long series, with the forms its
searches picked on the training part: see ``fitting``) and forecasts the next ``horizon`` quarters with 80%
and 95% intervals. Every series gets a forecast and a reason; model failures are recorded, never raised.

Metric definitions (percentages for MAPE and sMAPE):

- MAPE = mean(100 |a - f| / |a|); undefined (``None``) as soon as one held-out actual is zero.
- sMAPE = mean(200 |a - f| / (|a| + |f|)), a point with a = f = 0 counts as 0.
- MASE = mean |a - f| / mean |y_t - y_{t-m}| over the training part, m = 4, or m = 1 when the training
  part has 4 quarters or fewer; ``None`` when the scale is zero (a flat training part).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import numpy as np

from syno_forecast.candidates import (
    INTERMITTENT_FALLBACKS,
    MODEL_ORDER,
    QUANTILES,
    SEASON_LENGTH,
    SHORT_FALLBACKS,
    FloatArray,
    ModelFitError,
    ModelForecast,
    ModelName,
    SeriesProfile,
    ineligibility,
    parse_models,
)
from syno_forecast.fitting import REUSE_FORM_MIN_LENGTH, FitOutcome, fit_candidates, fit_model
from syno_forecast.results import CandidateResult, HoldoutMetrics, QuarterForecast, SeriesForecast
from syno_forecast.series import QuarterlySeries
from syno_shared.quarters import add_quarters

__all__ = ["CandidateResult", "HoldoutMetrics", "QuarterForecast", "SeriesForecast", "evaluate", "holdout_metrics"]

_TIE_TOLERANCE = 1e-9


# ---------------------------------------------------------------- metrics


def holdout_metrics(actual: FloatArray, forecast: FloatArray, training: FloatArray) -> HoldoutMetrics:
    """MAPE, sMAPE and MASE of ``forecast`` against ``actual``, scaled by ``training`` (see module doc)."""
    notes: list[str] = []
    errors = np.abs(actual - forecast)
    if np.any(actual == 0):
        mape = None
        notes.append("MAPE undefined: a held-out actual is zero")
    else:
        mape = float(np.mean(100 * errors / np.abs(actual)))
    denominator = np.abs(actual) + np.abs(forecast)
    smape = float(np.mean(np.where(denominator == 0, 0.0, 200 * errors / np.where(denominator == 0, 1, denominator))))
    season = SEASON_LENGTH if len(training) > SEASON_LENGTH else 1
    mase: float | None = None
    mase_season: int | None = None
    if len(training) > season:
        scale = float(np.mean(np.abs(training[season:] - training[:-season])))
        if scale > 0:
            mase, mase_season = float(np.mean(errors)) / scale, season
        else:
            notes.append(f"MASE undefined: the training part does not change at lag {season}")
    else:
        notes.append("MASE undefined: training part too short for a scale")
    return HoldoutMetrics(
        horizon=len(actual), mape=mape, smape=smape, mase=mase, mase_season=mase_season, notes=tuple(notes)
    )


def _rank_key(model: ModelName, metrics: HoldoutMetrics) -> tuple[bool, float, bool, float, int]:
    smape = math.inf if metrics.smape is None else round(metrics.smape / _TIE_TOLERANCE) * _TIE_TOLERANCE
    mase = math.inf if metrics.mase is None else round(metrics.mase / _TIE_TOLERANCE) * _TIE_TOLERANCE
    return (metrics.smape is None, smape, metrics.mase is None, mase, MODEL_ORDER.index(model))


# ---------------------------------------------------------------- forecasts


def _bounded_point(forecast: ModelForecast, is_nonnegative: bool) -> FloatArray:
    return np.maximum(forecast.point, 0.0) if is_nonnegative else forecast.point.copy()


def _quarter_rows(forecast: ModelForecast, first_target: date, is_nonnegative: bool) -> tuple[QuarterForecast, ...]:
    if forecast.quantiles is None:
        raise ValueError(f"{forecast.model} was fitted without intervals; final forecasts need them")
    point = _bounded_point(forecast, is_nonnegative)
    quantiles = np.maximum(forecast.quantiles, 0.0) if is_nonnegative else forecast.quantiles
    at_lower_95, at_lower_80, at_upper_80, at_upper_95 = (QUANTILES.index(level) for level in (0.025, 0.1, 0.9, 0.975))
    rows = []
    for step in range(len(point)):
        lower_80 = min(float(quantiles[step, at_lower_80]), float(point[step]))
        upper_80 = max(float(quantiles[step, at_upper_80]), float(point[step]))
        rows.append(
            QuarterForecast(
                target_quarter=add_quarters(first_target, step),
                point=float(point[step]),
                lower_80=lower_80,
                upper_80=upper_80,
                lower_95=min(float(quantiles[step, at_lower_95]), lower_80),
                upper_95=max(float(quantiles[step, at_upper_95]), upper_80),
            )
        )
    return tuple(rows)


def _pool(requested: Sequence[ModelName], profile: SeriesProfile) -> tuple[list[ModelName], list[CandidateResult], str]:
    """Candidates to run on a (non-zero) training part, the skipped ones, and a note on fallbacks."""
    pool: list[ModelName] = []
    skipped = []
    for name in requested:
        why = ineligibility(name, profile)
        if why is None:
            pool.append(name)
        else:
            skipped.append(CandidateResult(model=name, status="ineligible", detail=why))
    note = ""
    if profile.is_intermittent:
        pool += [
            model for model in INTERMITTENT_FALLBACKS if model not in pool and ineligibility(model, profile) is None
        ]
        note = f"intermittent series ({profile.describe()}): smooth-demand models skipped, Croston and mean added"
    if not pool:
        pool = [model for model in SHORT_FALLBACKS if ineligibility(model, profile) is None]
        note = f"no requested model can run on {profile.length} quarters: fell back to naive and mean"
    return pool, skipped, note


def _not_run(requested: Sequence[ModelName], why: str) -> tuple[CandidateResult, ...]:
    return tuple(CandidateResult(model=name, status="ineligible", detail=why) for name in requested)


def _no_backtest(
    series: QuarterlySeries, start: date, requested: Sequence[ModelName], horizon: int, why: str
) -> SeriesForecast:
    """Forecast a non-zero history without a backtest: too short, or activity only inside the holdout."""
    values = np.asarray(series.values, dtype=np.float64)
    profile = SeriesProfile.of(values)
    name = ModelName.CROSTON if ineligibility(ModelName.CROSTON, profile) is None else ModelName.NAIVE
    try:
        chosen = fit_model(name, values, horizon)
    except ModelFitError as error:
        name = ModelName.NAIVE
        chosen = fit_model(name, values, horizon)
        why += f"; croston failed ({error})"
    return SeriesForecast(
        series_id=series.series_id,
        model=name,
        description=chosen.description,
        reason=f"{why}; no backtest possible, {name} used as the fallback",
        interval_method=chosen.interval_method,
        history_quarters=len(values),
        actual_to_date=series.actual_to_date,
        metrics=None,
        baseline_smape=None,
        forecasts=_quarter_rows(chosen, add_quarters(start, len(values)), profile.is_nonnegative),
        candidates=_not_run(requested, f"not backtested: {why}"),
        notes=chosen.notes,
    )


def _zero_forecast(
    series: QuarterlySeries, first_target: date, requested: Sequence[ModelName], horizon: int, reason: str
) -> SeriesForecast:
    rows = tuple(
        QuarterForecast(
            target_quarter=add_quarters(first_target, step),
            point=0.0,
            lower_80=0.0,
            upper_80=0.0,
            lower_95=0.0,
            upper_95=0.0,
        )
        for step in range(horizon)
    )
    return SeriesForecast(
        series_id=series.series_id,
        model=ModelName.ZERO,
        description="zero",
        reason=reason,
        interval_method="none (no non-zero history)",
        history_quarters=len(series.values),
        actual_to_date=series.actual_to_date,
        metrics=None,
        baseline_smape=None,
        forecasts=rows,
        candidates=_not_run(requested, reason),
    )


def evaluate(
    series: QuarterlySeries,
    *,
    horizon: int = 1,
    models: Sequence[str] | None = None,
    last_complete_quarter: date | None = None,
) -> SeriesForecast:
    """Backtest the candidates on the last ``horizon`` quarters, choose one, refit it and forecast.

    ``last_complete_quarter`` is only needed for a series without any complete quarter (to date its
    target quarters); otherwise the series' own last quarter is used.
    """
    if horizon < 1:
        raise ValueError("horizon must be at least 1")
    requested = parse_models(models)
    values = np.asarray(series.values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"series {series.series_id!r} has NaN or infinite values")
    if series.start is None or len(values) == 0:
        if last_complete_quarter is None:
            raise ValueError(f"series {series.series_id!r} has no complete quarter: pass last_complete_quarter")
        return _zero_forecast(
            series,
            add_quarters(last_complete_quarter, 1),
            requested,
            horizon,
            "no complete quarter yet (data only in the partial quarter): zero forecast, nothing to learn from",
        )
    start = series.start
    first_target = add_quarters(start, len(values))
    full_profile = SeriesProfile.of(values)
    if full_profile.is_all_zero:
        return _zero_forecast(
            series, first_target, requested, horizon, f"all {len(values)} complete quarters are zero: zero forecast"
        )
    training, holdout = values[:-horizon], values[-horizon:]
    if len(training) < 2:
        why = f"only {len(values)} complete quarter(s) for horizon {horizon}"
        return _no_backtest(series, start, requested, horizon, why)
    training_profile = SeriesProfile.of(training)
    if training_profile.is_all_zero:
        why = f"activity starts inside the {horizon} held-out quarter(s); training part is zero"
        return _no_backtest(series, start, requested, horizon, why)

    pool, results, pool_note = _pool(requested, training_profile)
    fitted = fit_candidates(pool, training, horizon, intervals=False)  # scored on points only
    if not any(name in fitted.forecasts for name in pool):
        fallbacks = [
            model for model in SHORT_FALLBACKS if model not in pool and ineligibility(model, training_profile) is None
        ]
        fallback_fit = fit_candidates(fallbacks, training, horizon, intervals=False)
        fitted = FitOutcome(
            {**fitted.forecasts, **fallback_fit.forecasts}, {**fitted.failures, **fallback_fit.failures}
        )
        pool += fallbacks
        pool_note = (pool_note + "; " if pool_note else "") + "every candidate failed: fell back to naive and mean"

    is_nonnegative = training_profile.is_nonnegative
    scored: list[tuple[ModelName, HoldoutMetrics]] = []
    for name in pool:
        if name in fitted.forecasts:
            point = _bounded_point(fitted.forecasts[name], is_nonnegative)
            metrics = holdout_metrics(holdout, point, training)
            scored.append((name, metrics))
            results.append(
                CandidateResult(
                    model=name, status="evaluated", detail=fitted.forecasts[name].description, metrics=metrics
                )
            )
        else:
            results.append(
                CandidateResult(model=name, status="failed", detail=fitted.failures.get(name, "no forecast"))
            )
    baseline = fitted.forecasts.get(ModelName.SEASONAL_NAIVE)
    if baseline is None and ineligibility(ModelName.SEASONAL_NAIVE, training_profile) is None:
        try:
            baseline = fit_model(ModelName.SEASONAL_NAIVE, training, horizon)
        except ModelFitError:
            baseline = None
    baseline_smape = (
        holdout_metrics(holdout, _bounded_point(baseline, is_nonnegative), training).smape
        if baseline is not None
        else None
    )
    if not scored:  # even naive and mean failed; cannot happen with finite data, but never crash
        return _no_backtest(series, start, requested, horizon, "no candidate could be fitted on the training part")

    ranking = sorted(scored, key=lambda item: _rank_key(*item))
    # Long training parts: the final fits re-estimate the forms the backtest's searches picked (see fitting).
    forms = (
        {name: forecast.form for name, forecast in fitted.forecasts.items() if forecast.form is not None}
        if len(training) >= REUSE_FORM_MIN_LENGTH
        else {}
    )
    reason = _choice_reason(ranking, horizon, pool_note)
    for name, metrics in ranking:
        outcome = fit_candidates([name], values, horizon, forms=forms)
        final = outcome.forecasts.get(name)
        if final is None:
            reason += f"; {name} failed on the full history ({outcome.failures.get(name, '?')}), next best used"
            continue
        return SeriesForecast(
            series_id=series.series_id,
            model=name,
            description=final.description,
            reason=reason,
            interval_method=final.interval_method,
            history_quarters=len(values),
            actual_to_date=series.actual_to_date,
            metrics=metrics,
            baseline_smape=baseline_smape,
            forecasts=_quarter_rows(final, first_target, full_profile.is_nonnegative),
            candidates=tuple(sorted(results, key=lambda candidate: MODEL_ORDER.index(ModelName(candidate.model)))),
            notes=final.notes,
        )
    return _no_backtest(
        series, start, requested, horizon, reason + "; every ranked candidate failed on the full history"
    )


def _format_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _choice_reason(ranking: Sequence[tuple[ModelName, HoldoutMetrics]], horizon: int, pool_note: str) -> str:
    best, metrics = ranking[0]
    scores = ", ".join(f"{name} {_format_metric(scored.smape)}" for name, scored in ranking[:4])
    held = "latest quarter" if horizon == 1 else f"latest {horizon} quarters"
    text = f"lowest holdout sMAPE on the {held} among {len(ranking)} candidate(s) ({scores})"
    if len(ranking) > 1:
        runner_up = ranking[1][1]
        is_same_smape = _rank_key(best, metrics)[:2] == _rank_key(ranking[1][0], runner_up)[:2]
        if is_same_smape and _rank_key(best, metrics)[2:4] == _rank_key(ranking[1][0], runner_up)[2:4]:
            text += "; tied on sMAPE and MASE, simpler model kept"
        elif is_same_smape:
            text += f"; tied on sMAPE, lower MASE ({_format_metric(metrics.mase)} vs {_format_metric(runner_up.mase)})"
    return f"{pool_note}; {text}" if pool_note else text
