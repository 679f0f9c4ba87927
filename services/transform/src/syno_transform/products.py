"""Product classification (DESIGN.md section 4): the one home of product type, sub-category, SVR-RM
tier and the C2 decision with its service family, capacity and plan.

The product rules and C2 keywords are data (product_rules.csv, c2_keywords.csv) turned into polars
expressions; each distinct product is classified once. dbt reads the result from raw.sales_lines and
never re-derives it.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from syno_transform.reference import Reference

UNMAPPED: Final = "UNMAPPED"
UNKNOWN: Final = "UNKNOWN"
C2_PRODUCT_TYPES: Final[tuple[str, ...]] = ("C2-SAAS", "C2-HYBRID")
_TIER: Final = r"^SVR-RM-.*-(T\d)$"


def normalise_product(product_raw: pl.Expr) -> pl.Expr:
    """Upper-cased, leading '(...)' tag dropped, trimmed; null when nothing is left."""
    name = product_raw.str.replace(r"^\([^)]*\)", "").str.strip_chars().str.to_uppercase()
    return pl.when(name != "").then(name)


def product_tag(product_raw: pl.Expr) -> pl.Expr:
    """The text of a leading '(...)' tag, trimmed, or null."""
    tag = product_raw.str.extract(r"^\(([^)]*)\)", 1).str.strip_chars()
    return pl.when(tag != "").then(tag)


def rule_matches(product: pl.Expr, pattern: str, and_pattern: str | None) -> pl.Expr:
    """A product_rules row matches when its pattern (and its and_pattern, if any) is found."""
    matched = product.str.contains(f"(?i){pattern}")
    if and_pattern:
        matched = matched & product.str.contains(f"(?i){and_pattern}")
    return matched


def product_type(product: pl.Expr, rules: pl.DataFrame) -> pl.Expr:
    """The type of the first 'type' rule, in order, that matches; UNMAPPED when none (or no product)."""
    type_rules = rules.filter(pl.col("stage") == "type").sort("order")
    return pl.coalesce(
        *(
            pl.when(rule_matches(product, pattern, and_pattern)).then(pl.lit(type_))
            for pattern, and_pattern, type_ in type_rules.select("pattern", "and_pattern", "type").iter_rows()
        ),
        pl.lit(UNMAPPED),
    )


def rule_sub_cat(product: pl.Expr, type_: pl.Expr, rules: pl.DataFrame) -> pl.Expr:
    """The sub_cat of the first 'sub_cat' rule, in order, for this type that matches; else UNMAPPED."""
    sub_cat_rules = rules.filter(pl.col("stage") == "sub_cat").sort("order")
    columns = ("when_type", "pattern", "and_pattern", "sub_cat")
    return pl.coalesce(
        *(
            pl.when((type_ == when_type) & rule_matches(product, pattern, and_pattern)).then(pl.lit(sub_cat))
            for when_type, pattern, and_pattern, sub_cat in sub_cat_rules.select(columns).iter_rows()
        ),
        pl.lit(UNMAPPED),
    )


def c2_field(product: pl.Expr, keywords: pl.DataFrame, field: str) -> pl.Expr:
    """The value of the first keyword of `field`, in order, found in the product; else UNKNOWN."""
    rows = keywords.filter(pl.col("field") == field).sort("order").select("keyword", "value").iter_rows()
    return pl.coalesce(
        *(pl.when(product.str.contains(keyword.upper(), literal=True)).then(pl.lit(value)) for keyword, value in rows),
        pl.lit(UNKNOWN),
    )


def classify_products(product_raw: pl.LazyFrame, reference: Reference) -> pl.LazyFrame:
    """One row per distinct product_raw: product, product_tag, type, sub_cat, tier, is_c2, C2 fields, flag."""
    product = pl.col("product")
    # C2 by product type, not by sheet: 'C2 Surveillance' on a C2 sheet keeps its own SVS-C2-* sub-category
    # and is not a C2 line. This is the one place that decides it; dbt reads is_c2 from raw.sales_lines.
    is_c2 = pl.col("is_c2")
    c2_fields = {
        "c2_service_family": "service_family",
        "c2_capacity": "capacity",
        "c2_plan": "plan",
    }
    c2_sub_cat = pl.concat_str(pl.lit("C2"), *(pl.col(name) for name in c2_fields), separator="-")
    return (
        product_raw.unique()
        .with_columns(
            normalise_product(pl.col("product_raw")).alias("product"),
            product_tag(pl.col("product_raw")).alias("product_tag"),
        )
        .with_columns(product_type(product, reference.product_rules).alias("product_type"))
        .with_columns(pl.col("product_type").is_in(C2_PRODUCT_TYPES).alias("is_c2"))
        .with_columns(
            rule_sub_cat(product, pl.col("product_type"), reference.product_rules).alias("sub_cat"),
            *(
                pl.when(is_c2).then(c2_field(product, reference.c2_keywords, field)).alias(name)
                for name, field in c2_fields.items()
            ),
        )
        .with_columns(
            pl.when(product.is_null())
            .then(pl.lit(UNMAPPED))
            .when(is_c2)
            .then(c2_sub_cat)
            .otherwise(pl.col("sub_cat"))
            .alias("sub_cat")
        )
        .with_columns(
            pl.col("sub_cat").str.extract(_TIER, 1).alias("tier"),
            ((pl.col("product_type") == UNMAPPED) | (pl.col("sub_cat") == UNMAPPED)).alias("is_product_unmapped"),
        )
    )
