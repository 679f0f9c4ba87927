"""What the sample reads from the mapping tables (countries to regions, currency rates), and the
country and currency it uses on purpose because the tables lack them."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

UNMAPPED_REGION: Final = "UNMAPPED"
UNMAPPED_CURRENCY: Final = "GBP"
UNMAPPED_COUNTRY: Final = "Atlantis"

COUNTRY_FILE: Final = "Mapped_Countries_with_Regions.csv"
RATES_FILE: Final = "exchange_rates.csv"


def read_regions(mapping_dir: Path) -> dict[str, str]:
    frame = pl.read_csv(mapping_dir / COUNTRY_FILE, infer_schema=False)
    return {
        country.strip(): region.strip()
        for country, region in frame.select("Country", "Region").iter_rows()
        if country is not None and region is not None
    }


def read_rates(mapping_dir: Path) -> dict[str, float]:
    frame = pl.read_csv(mapping_dir / RATES_FILE, schema_overrides={"rate_to_usd": pl.Float64})
    return {currency.strip(): rate for currency, rate in frame.select("currency", "rate_to_usd").iter_rows()}
