"""Helpers of the cleaning tests: a small reference written out here (so its rules are visible), one
tiny sheet cleaned at a time, and expected frames with the dtypes of raw.sales_lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from syno_transform.cleaning import CleanResult, clean_sales
from syno_transform.reference import Reference
from syno_transform.schema import SALES_LINES_SCHEMA

REAL_MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"

SMALL_MAPPING = {
    "Mapped_Countries_with_Regions.csv": 'Country,Region\r\nGermany,DE\r\n"Korea, Republic of",HQ\r\nJapan,JP\r\n',
    "exchange_rates.csv": "currency,rate_to_usd\nUSD,1.0\nEUR,1.5\nJPY,0.25\n",
    "device_to_bay.csv": "Product,Bays\nDS920+,4\n",
    "product_rules.csv": (
        "stage,order,when_type,pattern,and_pattern,type,sub_cat\n"
        "type,10,,^HAT,,DRIVE,\n"
        "type,20,,^(DS|RS)[^ _]*$,,SERVER,\n"
        "type,30,,^C2.*BACKUP,,C2-SAAS,\n"
        "type,40,,^C2.*STORAGE,,C2-HYBRID,\n"
        "type,50,,LICENSE,PRO,DSMLICENSE,\n"
        "type,60,,^(DS|RS|X),,Other,\n"
        "sub_cat,10,DRIVE,.,,,DRV\n"
        "sub_cat,20,SERVER,^RS.*XS,,,SVR-RM-GP-T3\n"
        "sub_cat,21,SERVER,^RS,RP,,SVR-RM-GP-T2\n"
        "sub_cat,22,SERVER,^RS,,,SVR-RM-GP-T1\n"
        "sub_cat,23,SERVER,^DS,,,SVR-DT-DS\n"
        "sub_cat,30,DSMLICENSE,.,,,DSMLICENSE\n"
    ),
    "c2_keywords.csv": (
        "field,order,keyword,value\n"
        "service_family,1,STORAGE,STORAGE\n"
        "service_family,2,BACKUP,BACKUP\n"
        "capacity,1,1T,1T\n"
        "capacity,2,100G,100G\n"
        "plan,1,BUSINESS,BUSINESS\n"
        "plan,2,ADV,ADVANCED\n"
    ),
}

FLAGS = ["is_country_unmapped", "is_currency_unmapped", "is_product_unmapped"]
PRODUCT_COLUMNS = ["product_raw", "product", "product_tag", "product_type", "sub_cat", "tier"]
C2_COLUMNS = ["product", "product_type", "sub_cat", "is_c2", "c2_service_family", "c2_capacity", "c2_plan"]


def clean(sheet: pl.DataFrame | pl.LazyFrame, reference: Reference, sheet_name: str = "2024") -> CleanResult:
    return clean_sales(sheet, sheet_name=sheet_name, snapshot_id="snap-1", reference=reference)


def frame(schema: dict[str, Any], **columns: list[Any]) -> pl.DataFrame:
    """An expected frame: column name -> values, with dtypes from `schema` (String when not listed)."""
    return pl.DataFrame(columns, schema={name: schema.get(name, pl.String) for name in columns})


def expected(**columns: list[Any]) -> pl.DataFrame:
    """An expected slice of raw.sales_lines, dtypes as in the table."""
    return frame(dict(SALES_LINES_SCHEMA), **columns)
