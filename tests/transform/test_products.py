"""The product classification: type and sub-category rules, SVR-RM tier, C2 decision and fields.

Most cases use the small reference of cleaning_support (rules visible there); the real-name checks use
the shipped mapping tables.
"""

from __future__ import annotations

import polars as pl
from cleaning_support import C2_COLUMNS, clean, expected, frame
from polars.testing import assert_frame_equal

from syno_transform.reference import Reference

# --- products ------------------------------------------------------------------------------------


def test_product_is_trimmed_upper_cased_and_its_leading_tag_split_off(reference: Reference) -> None:
    sheet = pl.DataFrame({"Product": [" (NFR)  ds920+ ", "(Demo)RS822+", "DS920+ (refurb)", "( )HAT5300"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product_raw", "product", "product_tag"),
        expected(
            product_raw=["(NFR) ds920+", "(Demo)RS822+", "DS920+ (refurb)", "( )HAT5300"],
            product=["DS920+", "RS822+", "DS920+ (REFURB)", "HAT5300"],
            product_tag=["NFR", "Demo", None, None],
        ),
    )


def test_the_first_matching_type_rule_then_the_first_sub_cat_rule_of_that_type_win(
    reference: Reference,
) -> None:
    """Rules apply in `order`; and_pattern must match too; sub_cat rules only see their own type."""
    sheet = pl.DataFrame(
        {"Product": ["RS3621xs+", "RS2423RP+", "RS822+", "DS920+", "DS NAS bundle", "HAT5300", "VMM license PRO"]}
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", "is_product_unmapped"),
        expected(
            product=["RS3621XS+", "RS2423RP+", "RS822+", "DS920+", "DS NAS BUNDLE", "HAT5300", "VMM LICENSE PRO"],
            product_type=["SERVER", "SERVER", "SERVER", "SERVER", "Other", "DRIVE", "DSMLICENSE"],
            sub_cat=["SVR-RM-GP-T3", "SVR-RM-GP-T2", "SVR-RM-GP-T1", "SVR-DT-DS", "UNMAPPED", "DRV", "DSMLICENSE"],
            tier=["T3", "T2", "T1", None, None, None, None],
            is_product_unmapped=[False, False, False, False, True, False, False],
        ),
    )


def test_a_product_no_type_rule_matches_and_a_blank_product_are_unmapped(reference: Reference) -> None:
    """Rows are kept with product_type and sub_cat 'UNMAPPED', flagged, and listed once per value."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", "A2", "A3", "A4"],
            "Product": ["Mystery box", None, "mystery  BOX", "NULL"],
            "Country": ["Germany"] * 4,
            "Currency": ["EUR"] * 4,
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", "is_product_unmapped"),
        expected(
            product=["MYSTERY BOX", None, "MYSTERY BOX", None],
            product_type=["UNMAPPED"] * 4,
            sub_cat=["UNMAPPED"] * 4,
            tier=[None] * 4,
            is_product_unmapped=[True] * 4,
        ),
    )
    assert_frame_equal(
        result.unmapped,
        frame({"rows": pl.Int64}, field=["product", "product"], value=["MYSTERY BOX", None], rows=[2, 2]),
    )


def test_c2_products_get_service_capacity_and_plan_from_the_keywords(reference: Reference) -> None:
    """sub_cat is C2-<service>-<capacity>-<plan>; a field with no keyword is UNKNOWN; others stay null."""
    sheet = pl.DataFrame({"Product": ["C2 Storage Advanced", "C2_BACKUP_BUSINESS_1T", "DS920+"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["C2 STORAGE ADVANCED", "C2_BACKUP_BUSINESS_1T", "DS920+"],
            product_type=["C2-HYBRID", "C2-SAAS", "SERVER"],
            sub_cat=["C2-STORAGE-UNKNOWN-ADVANCED", "C2-BACKUP-1T-BUSINESS", "SVR-DT-DS"],
            is_c2=[True, True, False],
            c2_service_family=["STORAGE", "BACKUP", None],
            c2_capacity=["UNKNOWN", "1T", None],
            c2_plan=["ADVANCED", "BUSINESS", None],
        ),
    )


def test_c2_fields_follow_the_product_type_not_the_sheet(reference: Reference) -> None:
    """On '2024-C2' a product whose type is not C2 keeps its own classification and gets no C2 fields."""
    sheet = pl.DataFrame({"PI": ["A1", "A2"], "Product": ["Storage 100G plan", None]})

    result = clean(sheet, reference, sheet_name="2024-C2")

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["STORAGE 100G PLAN", None],
            product_type=["UNMAPPED", "UNMAPPED"],
            sub_cat=["UNMAPPED", "UNMAPPED"],
            is_c2=[False, False],
            c2_service_family=[None, None],
            c2_capacity=[None, None],
            c2_plan=[None, None],
        ),
    )


def test_c2_surveillance_on_a_c2_sheet_is_a_surveillance_product_not_c2(real_reference: Reference) -> None:
    """The shipped rules type 'C2 Surveillance' as SURVEILLANCE (SVS-C2-T<n>): not C2, no C2 fields."""
    sheet = pl.DataFrame({"Product": ["C2 Surveillance Basic", "C2 Surveillance Professional", "C2 Storage Advanced"]})

    result = clean(sheet, real_reference, sheet_name="2024-C2")

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["C2 SURVEILLANCE BASIC", "C2 SURVEILLANCE PROFESSIONAL", "C2 STORAGE ADVANCED"],
            product_type=["SURVEILLANCE", "SURVEILLANCE", "C2-HYBRID"],
            sub_cat=["SVS-C2-T1", "SVS-C2-T2", "C2-STORAGE-UNKNOWN-ADVANCED"],
            is_c2=[False, False, True],
            c2_service_family=[None, None, "STORAGE"],
            c2_capacity=[None, None, "UNKNOWN"],
            c2_plan=[None, None, "ADVANCED"],
        ),
    )


def test_real_product_names_with_the_shipped_rules(real_reference: Reference) -> None:
    """The business's own rules on a few real SKUs, rackmount tiers and C2 names included."""
    names = [
        "RS2423RP+",
        "RS3621xs+",
        "RS822+",
        "SA3400D",
        "HD6500",
        "FS6400",
        "RX1217",
        "DS923+",
        "HAT5300-8T",
        "C2 Storage Advanced",
        "C2_BACKUP_BUSINESS_1T",
    ]

    result = clean(pl.DataFrame({"Product": names}), real_reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", *C2_COLUMNS[3:]),
        expected(
            product=[
                "RS2423RP+",
                "RS3621XS+",
                "RS822+",
                "SA3400D",
                "HD6500",
                "FS6400",
                "RX1217",
                "DS923+",
                "HAT5300-8T",
                "C2 STORAGE ADVANCED",
                "C2_BACKUP_BUSINESS_1T",
            ],
            product_type=["SERVER"] * 8 + ["DRIVE", "C2-HYBRID", "C2-SAAS"],
            sub_cat=[
                "SVR-RM-GP-T2",
                "SVR-RM-GP-T3",
                "SVR-RM-GP-T1",
                "SVR-RM-GP-T4",
                "SVR-RM-GP-T5",
                "SVR-RM-FS-T3",
                "SVR-RM-GX-T2",
                "SVR-DT-DS-T2",
                "DRV-HD-T2",
                "C2-STORAGE-UNKNOWN-ADVANCED",
                "C2-BACKUP-1T-BUSINESS",
            ],
            tier=["T2", "T3", "T1", "T4", "T5", "T3", "T2", None, None, None, None],
            is_c2=[False] * 9 + [True, True],
            c2_service_family=[None] * 9 + ["STORAGE", "BACKUP"],
            c2_capacity=[None] * 9 + ["UNKNOWN", "1T"],
            c2_plan=[None] * 9 + ["ADVANCED", "BUSINESS"],
        ),
    )
