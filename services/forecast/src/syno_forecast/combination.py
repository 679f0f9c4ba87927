"""Combinations of candidate models: the mean or median of the members' points, the mixture's quantiles."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import NormalDist

import numpy as np
from scipy.special import ndtr  # type: ignore[import-untyped]  # comes with darts/statsforecast; no stubs

from syno_forecast.candidates import (
    COMBINATION_MEMBERS,
    QUANTILES,
    FloatArray,
    ModelFitError,
    ModelForecast,
    ModelName,
)


def _mixture_quantiles(quantiles: FloatArray) -> FloatArray:
    """Quantiles (h, len(QUANTILES)) of the equal-weight mixture of members given as (members, h, 5).

    Each member is read as a split normal around its median, its two spreads taken from its 80% and 95%
    bounds; the mixture CDF is inverted by bisection. Unlike averaging quantiles, the mixture widens when
    members disagree, which is what a combination's uncertainty should do.
    """
    middle = QUANTILES.index(0.5)
    centre = quantiles[:, :, middle]
    below = [i for i in range(len(QUANTILES)) if i < middle]
    above = [i for i in range(len(QUANTILES)) if i > middle]
    z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])
    floor = 1e-9 * (np.abs(centre) + 1.0)
    lower_deviation = np.maximum(np.mean([(quantiles[:, :, i] - centre) / z[i] for i in below], axis=0), floor)
    upper_deviation = np.maximum(np.mean([(quantiles[:, :, i] - centre) / z[i] for i in above], axis=0), floor)
    lower_weight = 2 * lower_deviation / (lower_deviation + upper_deviation)
    upper_weight = 2 * upper_deviation / (lower_deviation + upper_deviation)

    levels = np.array([q for q in QUANTILES if q != 0.5])[:, None]  # (levels, 1)
    lower = np.broadcast_to(np.min(centre - 10 * lower_deviation, axis=0), (len(levels), centre.shape[1])).copy()
    upper = np.broadcast_to(np.max(centre + 10 * upper_deviation, axis=0), lower.shape).copy()
    members = centre.shape[0]
    for _ in range(48):  # bisection on all levels and steps at once: the bracket shrinks 2^48-fold
        midpoint = (lower + upper) / 2
        value = midpoint[:, None, :]  # (levels, 1, h) against members (members, h)
        left = lower_weight * ndtr((value - centre) / lower_deviation)
        right = 1 - upper_weight * ndtr((centre - value) / upper_deviation)
        mixture_cdf = np.where(value < centre, left, right).sum(axis=1) / members
        is_below = mixture_cdf < levels
        lower = np.where(is_below, midpoint, lower)
        upper = np.where(is_below, upper, midpoint)
    result = np.empty(quantiles.shape[1:], dtype=np.float64)
    solved = ((lower + upper) / 2).T  # (h, levels)
    result[:, :middle] = solved[:, :middle]
    result[:, middle] = centre.mean(axis=0)
    result[:, middle + 1 :] = solved[:, middle:]
    return result


def combine(
    name: ModelName, members: Mapping[ModelName, ModelForecast], failed: Mapping[ModelName, str] | None = None
) -> ModelForecast:
    """Mean (``combination``) or median (``combination_median``) of the members' points.

    The intervals are those of the equal-weight mixture of the members' forecast distributions (none when
    a member was fitted for its point only).
    ``failed`` members (name -> error) are named in the notes.
    """
    if len(members) < 2:
        raise ModelFitError(f"a combination needs at least 2 fitted members, got {len(members)}")
    names = [member for member in COMBINATION_MEMBERS if member in members]
    points = np.stack([members[member].point for member in names])
    reduce = np.median if name is ModelName.COMBINATION_MEDIAN else np.mean
    label = "median" if name is ModelName.COMBINATION_MEDIAN else "mean"
    point = np.asarray(reduce(points, axis=0), dtype=np.float64)
    member_quantiles = [item for member in names if (item := members[member].quantiles) is not None]
    quantiles: FloatArray | None = None
    if len(member_quantiles) == len(names):  # points-only members (the backtest) have no mixture
        quantiles = _mixture_quantiles(np.stack(member_quantiles))
        quantiles[:, QUANTILES.index(0.5)] = point
    notes = tuple(f"member {member} left out: {error}" for member, error in (failed or {}).items())
    return ModelForecast(
        name,
        f"{label} of " + "; ".join(members[member].description for member in names),
        point,
        quantiles,
        "equal-weight mixture of the members' forecast distributions",
        notes,
    )
