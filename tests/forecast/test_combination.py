"""Combinations of candidate models: the mixture's intervals keep agreeing members' spread and widen on disagreement."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from syno_forecast.candidates import QUANTILES, ModelForecast, ModelName
from syno_forecast.combination import combine


def normal_member(name: str, centre: float, spread: float) -> ModelForecast:
    z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])
    return ModelForecast(ModelName(name), name, np.array([centre]), (centre + spread * z)[None, :], "test")


def test_combination_of_agreeing_members_keeps_their_interval() -> None:
    members = {member.model: member for member in (normal_member("ets", 10, 2), normal_member("theta", 10, 2))}
    combined = combine(ModelName.COMBINATION, members)
    assert combined.quantiles == pytest.approx(members[ModelName.ETS].quantiles, abs=1e-6)


def test_combination_of_disagreeing_members_is_wider_than_averaged_quantiles() -> None:
    members = {member.model: member for member in (normal_member("ets", 10, 2), normal_member("theta", 14, 2))}
    combined = combine(ModelName.COMBINATION_MEDIAN, members)
    averaged = (members[ModelName.ETS].quantiles + members[ModelName.THETA].quantiles) / 2
    assert combined.point == pytest.approx(np.array([12.0]))
    assert combined.quantiles[0, 0] < averaged[0, 0] and combined.quantiles[0, -1] > averaged[0, -1]
    # the mixture is symmetric about 12: equal tails
    assert 12 - combined.quantiles[0, 0] == pytest.approx(combined.quantiles[0, -1] - 12)
