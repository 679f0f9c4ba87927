"""The words of the marts that activation's rules use, defined once.

`is_svr_rm_without_c2` is the one rule for an SVR-RM buyer to offer C2 to: it bought SVR-RM, has revenue
in the quarter and no C2 yet (storylines count them, narratives name them).
"""

from __future__ import annotations

from typing import Final

import polars as pl

SEGMENT_SVR_RM: Final = "SVR-RM buyer"
SEGMENT_DESKTOP: Final = "Desktop only"
SEGMENT_C2_ONLY: Final = "C2 only"

SIGNAL_DORMANT: Final = "dormant"  # no revenue this quarter, revenue the same quarter a year earlier

ENTRY_RACKMOUNT_TIER: Final = "T1"  # the SVR-RM tier a desktop buyer moves up to first (RS... rackmounts)

OVERALL: Final = "overall"  # the region name of a figure over all regions (forecasts, attach rate)


def is_svr_rm_without_c2() -> pl.Expr:
    """Over columns segment, has_c2 and revenue_usd."""
    return (pl.col("segment") == SEGMENT_SVR_RM) & ~pl.col("has_c2") & (pl.col("revenue_usd") > 0)
