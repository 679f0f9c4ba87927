"""Every catalogue product is classified as product_rules.csv and c2_keywords.csv classify it."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from syno_sample.catalogue import CATALOGUE, CatalogueEntry

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"


def _normalise(name: str) -> str:
    return re.sub(r"^\([^)]*\)", "", name.strip().upper()).strip()


def _rules(stage: str) -> list[dict[str, str]]:
    with (MAPPING_DIR / "product_rules.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["stage"] == stage]
    return sorted(rows, key=lambda row: int(row["order"]))


def _matches(rule: dict[str, str], name: str) -> bool:
    return re.search(rule["pattern"], name) is not None and (
        not rule["and_pattern"] or re.search(rule["and_pattern"], name) is not None
    )


def _c2_keywords() -> dict[str, list[tuple[str, str]]]:
    with (MAPPING_DIR / "c2_keywords.csv").open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: (row["field"], int(row["order"])))
    fields: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        fields.setdefault(row["field"], []).append((row["keyword"], row["value"]))
    return fields


def _first_keyword(keywords: list[tuple[str, str]], name: str) -> str:
    return next((value for keyword, value in keywords if keyword in name), "UNKNOWN")


def _leftmost_keyword(keywords: list[tuple[str, str]], name: str) -> str:
    found = sorted((name.find(keyword), value) for keyword, value in keywords if keyword in name)
    return found[0][1] if found else "UNKNOWN"


@dataclass(frozen=True)
class _Classified:
    product_type: str
    sub_cat: str | None
    c2: tuple[str | None, str | None, str | None] | None


def _classify(name: str) -> _Classified:
    """product_rules.csv and c2_keywords.csv applied with `re`, as DESIGN.md section 4 states them."""
    product = _normalise(name)
    product_type = next(rule["type"] for rule in _rules("type") if _matches(rule, product))
    sub_cats = [rule for rule in _rules("sub_cat") if rule["when_type"] == product_type]
    sub_cat = next((rule["sub_cat"] for rule in sub_cats if _matches(rule, product)), None)
    if product_type not in ("C2-SAAS", "C2-HYBRID"):
        return _Classified(product_type, sub_cat, None)
    keywords = _c2_keywords()
    c2 = (
        _first_keyword(keywords["service_family"], product),
        _first_keyword(keywords["capacity"], product),
        _first_keyword(keywords["plan"], product),
    )
    leftmost = tuple(_leftmost_keyword(keywords[f], product) for f in ("service_family", "capacity", "plan"))
    assert leftmost == c2, f"{name}: keyword order and position disagree"
    return _Classified(product_type, sub_cat or "C2-{}-{}-{}".format(*c2), c2)


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.name)
def test_catalogue_classification_follows_the_mapping_tables(entry: CatalogueEntry) -> None:
    classified = _classify(entry.name)
    c2 = (entry.c2_service_family, entry.c2_capacity, entry.c2_plan)
    assert classified == _Classified(entry.product_type, entry.sub_cat, None if c2 == (None, None, None) else c2)
    assert _classify(f"  (EOL) {entry.name.lower()} ") == classified
    tier = re.fullmatch(r"SVR-RM-[A-Z]+-(T[1-5])", entry.sub_cat)
    assert entry.tier == (tier.group(1) if tier else None)
    assert (entry.sheet_kind == "c2") == (entry.product_type.startswith("C2-") or entry.name.startswith("C2 "))


def test_catalogue_covers_every_rackmount_tier_and_product_type() -> None:
    assert {e.tier for e in CATALOGUE} == {None, "T1", "T2", "T3", "T4", "T5"}
    types = {rule["type"] for rule in _rules("type")}
    assert {e.product_type for e in CATALOGUE} == types
    assert len({e.product for e in CATALOGUE}) == len(CATALOGUE)
