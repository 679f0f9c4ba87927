"""Sample sale-out workbooks: a messy ``.xlsx`` in the real format, and the truth behind it.

``write_workbook`` writes what the distributor's export looks like (DESIGN.md section 4):
one sheet per year of hardware and licence sales (``2023``) and one per year of C2
sales (``2023-C2``), the contract's columns in order, and the known messiness in small
shares. ``generate_sales`` returns the ground truth: one clean row per real sales line,
with what a correct cleaner must derive from the workbook (trimmed names, the product
without its ``(...)`` tag, numbers parsed from text, the classification from
``product_rules.csv``, revenue in USD).

Everything is drawn from ``random.Random`` streams seeded by ``SampleSpec.seed`` (one
stream per sheet and purpose), so a seed gives the same truth frame and the same
workbook bytes.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Final, Literal

import polars as pl
import xlsxwriter

from syno_shared.contract import WORKBOOK_COLUMNS, SheetKind
from syno_transform.schema import SALES_LINES_SCHEMA

HEADER: Final[tuple[str, ...]] = tuple(WORKBOOK_COLUMNS)
UNMAPPED_REGION: Final = "UNMAPPED"
UNMAPPED_CURRENCY: Final = "GBP"
UNMAPPED_COUNTRY: Final = "Atlantis"

COUNTRY_FILE: Final = "Mapped_Countries_with_Regions.csv"
RATES_FILE: Final = "exchange_rates.csv"


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    """One product as it is sold, with its classification under product_rules.csv / c2_keywords.csv."""

    name: str
    """As it appears in the workbook's Product column (before any tag or stray space)."""
    product_type: str
    sub_cat: str
    list_price_usd: float
    weight: float
    """Relative share of lines on its kind of sheet."""
    sheet_kind: SheetKind = "hardware"
    c2_service_family: str | None = None
    c2_capacity: str | None = None
    c2_plan: str | None = None

    @property
    def product(self) -> str:
        """The normalised name: trimmed and upper-cased (catalogue names carry no tag)."""
        return self.name.strip().upper()

    @property
    def tier(self) -> str | None:
        """T1..T5 for rackmount servers (sub-category SVR-RM-<line>-T<n>), else None."""
        return self.sub_cat.rsplit("-", 1)[1] if self.sub_cat.startswith("SVR-RM-") else None


def _hw(name: str, product_type: str, sub_cat: str, price: float, weight: float) -> CatalogueEntry:
    return CatalogueEntry(name, product_type, sub_cat, price, weight)


def _c2(
    name: str, product_type: str, service: str, capacity: str, plan: str, price: float, weight: float
) -> CatalogueEntry:
    return CatalogueEntry(
        name, product_type, f"C2-{service}-{capacity}-{plan}", price, weight, "c2", service, capacity, plan
    )


# Each classification below was checked by hand against product_rules.csv and
# c2_keywords.csv; tests/shared/test_sample.py re-derives every one of them with `re`.
CATALOGUE: Final[tuple[CatalogueEntry, ...]] = (
    # Desktop servers. Note "DS2422+" is T2: the rule's "DS24" branch needs a second "DS".
    _hw("DS124", "SERVER", "SVR-DT-DS-T1", 150, 3.0),
    _hw("DS223j", "SERVER", "SVR-DT-DS-T1", 190, 3.0),
    _hw("DS224+", "SERVER", "SVR-DT-DS-T2", 330, 5.0),
    _hw("DS423+", "SERVER", "SVR-DT-DS-T2", 480, 4.0),
    _hw("DS723+", "SERVER", "SVR-DT-DS-T2", 450, 3.0),
    _hw("DS923+", "SERVER", "SVR-DT-DS-T2", 600, 6.0),
    _hw("DS1522+", "SERVER", "SVR-DT-DS-T2", 750, 3.0),
    _hw("DS1821+", "SERVER", "SVR-DT-DS-T2", 1000, 3.0),
    _hw("DS2422+", "SERVER", "SVR-DT-DS-T2", 1700, 1.0),
    _hw("DS620slim", "SERVER", "SVR-DT-DS-T2", 450, 0.5),
    _hw("DS1621xs+", "SERVER", "SVR-DT-DS-T3", 1600, 1.5),
    _hw("DS3622xs+", "SERVER", "SVR-DT-DS-T3", 3400, 1.0),
    _hw("DX517", "SERVER", "SVR-DT-DX-T2", 470, 1.5),
    _hw("DX1222", "SERVER", "SVR-DT-DX-T3", 800, 0.7),
    # Rackmount servers, general purpose (RS, SA, UC, HD).
    _hw("RS422+", "SERVER", "SVR-RM-GP-T1", 650, 2.0),
    _hw("RS822+", "SERVER", "SVR-RM-GP-T1", 1050, 2.0),
    _hw("RS1221+", "SERVER", "SVR-RM-GP-T1", 1000, 2.5),
    _hw("RS2423+", "SERVER", "SVR-RM-GP-T2", 2400, 1.2),
    _hw("RS2421RP+", "SERVER", "SVR-RM-GP-T2", 2800, 0.6),
    _hw("RS2821RP+", "SERVER", "SVR-RM-GP-T2", 3000, 0.5),
    _hw("RS3621RPxs", "SERVER", "SVR-RM-GP-T2", 4200, 0.4),
    _hw("RS1619xs+", "SERVER", "SVR-RM-GP-T3", 2100, 0.4),
    _hw("RS3621xs+", "SERVER", "SVR-RM-GP-T3", 4500, 0.6),
    _hw("RS4021xs+", "SERVER", "SVR-RM-GP-T3", 6200, 0.3),
    _hw("SA3410", "SERVER", "SVR-RM-GP-T4", 5500, 0.4),
    _hw("SA3610", "SERVER", "SVR-RM-GP-T4", 7500, 0.3),
    _hw("UC3200", "SERVER", "SVR-RM-GP-T4", 6000, 0.1),
    _hw("UC3400", "SERVER", "SVR-RM-GP-T4", 8000, 0.1),
    _hw("SA6400", "SERVER", "SVR-RM-GP-T5", 12000, 0.15),
    _hw("HD6500", "SERVER", "SVR-RM-GP-T5", 22000, 0.05),
    # Rackmount servers, expansion units (RX), flash (FS) and FX.
    _hw("RX418", "SERVER", "SVR-RM-GX-T2", 700, 1.0),
    _hw("RX1217", "SERVER", "SVR-RM-GX-T2", 1300, 0.4),
    _hw("RX1223RP", "SERVER", "SVR-RM-GX-T3", 1600, 0.8),
    _hw("RX1217sas", "SERVER", "SVR-RM-GX-T4", 2500, 0.2),
    _hw("RXD1219sas", "SERVER", "SVR-RM-GX-T4", 3500, 0.1),
    _hw("RX6022sas", "SERVER", "SVR-RM-GX-T5", 9000, 0.1),
    _hw("FS2500", "SERVER", "SVR-RM-FS-T1", 6000, 0.2),
    _hw("FS3410", "SERVER", "SVR-RM-FS-T2", 9000, 0.15),
    _hw("FS3600", "SERVER", "SVR-RM-FS-T2", 14000, 0.1),
    _hw("FS6400", "SERVER", "SVR-RM-FS-T3", 25000, 0.05),
    _hw("FX2421", "SERVER", "SVR-RM-FX-T2", 5000, 0.1),
    # Drives.
    _hw("HAT3300-4T", "DRIVE", "DRV-HD-T1", 110, 8.0),
    _hw("HAT3310-8T", "DRIVE", "DRV-HD-T1", 210, 6.0),
    _hw("HAT3310-16T", "DRIVE", "DRV-HD-T1", 380, 3.0),
    _hw("HAT5300-8T", "DRIVE", "DRV-HD-T2", 260, 4.0),
    _hw("HAT5310-20T", "DRIVE", "DRV-HD-T2", 520, 2.0),
    _hw("HAS5300-12T", "DRIVE", "DRV-HD-T3", 420, 1.0),
    _hw("SAT5210-960G", "DRIVE", "DRV-SD-T2", 230, 2.0),
    _hw("SAT5221-1920G", "DRIVE", "DRV-SD-T2", 420, 1.0),
    _hw("SNV3410-400G", "DRIVE", "DRV-SD-T1", 120, 3.0),
    _hw("SNV3510-800G", "DRIVE", "DRV-SD-T1", 200, 1.5),
    # Accessories.
    _hw("D4ES02-8G", "SVR-ACC", "Memory", 95, 3.0),
    _hw("D4ECSO-2666-16G", "SVR-ACC", "Memory", 180, 2.0),
    _hw("D4RD-2666-32G", "SVR-ACC", "Memory", 320, 1.0),
    _hw("E10G21-F2", "SVR-ACC", "Accessory", 200, 1.5),
    _hw("E10G30-T2", "SVR-ACC", "Accessory", 230, 1.0),
    _hw("E25G30-F2", "SVR-ACC", "Accessory", 320, 0.6),
    _hw("M2D20", "SVR-ACC", "Accessory", 45, 1.0),
    _hw("RKS-02", "SVR-ACC", "Accessory", 110, 1.2),
    _hw("RKS1317", "SVR-ACC", "Accessory", 130, 0.5),
    _hw("Power Adapter 65W_1", "SVR-ACC", "Accessory", 40, 0.5),
    # Extended warranty.
    _hw("EW201", "SVR-EXW", "Extended Warranty", 70, 2.0),
    _hw("EW202", "SVR-EXW", "Extended Warranty", 160, 1.0),
    _hw("Extended Warranty Plus 5Y", "SVR-EXW", "Extended Warranty", 300, 0.3),
    # Surveillance.
    _hw("DVA1622", "SURVEILLANCE", "SVS-DT-DVA", 700, 0.6),
    _hw("DVA3221", "SURVEILLANCE", "SVS-DT-DVA", 2000, 0.3),
    _hw("NVR1218", "SURVEILLANCE", "SVS-DT-OT", 650, 0.2),
    _hw("VS600HD", "SURVEILLANCE", "SVS-DT-VS", 280, 0.2),
    _hw("BC500", "SURVEILLANCE", "SVS-CAM", 230, 1.0),
    _hw("TC500", "SURVEILLANCE", "SVS-CAM", 230, 0.8),
    _hw("Device License x 1", "SURVEILLANCE", "SVS-Lx1", 55, 1.5),
    _hw("Device License x 4", "SURVEILLANCE", "SVS-Lx4", 200, 0.8),
    _hw("Device License x 8", "SURVEILLANCE", "SVS-Lx8", 390, 0.4),
    # Routers and BeeDrive.
    _hw("RT6600ax", "DLG", "RT-AX", 300, 0.8),
    _hw("WRX560", "DLG", "RT-AX", 220, 0.6),
    _hw("RT2600ac", "DLG", "RT-AC", 200, 0.4),
    _hw("MR2200ac", "DLG", "RT-AC", 150, 0.3),
    _hw("BDS70-1T", "DLG", "BE-D", 130, 0.5),
    # DSM licences.
    _hw("VMM Pro 3 Nodes", "DSMLICENSE", "DSMLICENSE", 200, 0.5),
    _hw("MailPlus 5 Licenses", "DSMLICENSE", "DSMLICENSE", 70, 0.5),
    _hw("Presto File Server 1 Client", "DSMLICENSE", "DSMLICENSE", 50, 0.2),
    _hw("Active_Insight_Business_1Y", "DSMLICENSE", "DSMLICENSE", 20, 0.2),
    _hw("Synology DSM Virtual Machine License", "DSMLICENSE", "DSMLICENSE", 60, 0.2),
    # Other: a bundle with a space, "DSM ..." caught by the DS rule first, merchandise.
    _hw("DS923+ Bundle 4x4TB", "Other", "Other", 1000, 0.3),
    _hw("DSM License Pack", "Other", "Other", 120, 0.1),
    _hw("Synology Backpack", "Other", "Other", 40, 0.2),
    # C2 sheets: C2 storage (hybrid) and SaaS SKUs.
    _c2("C2 Storage Basic 100GB", "C2-HYBRID", "STORAGE", "100G", "BASIC", 12, 3.0),
    _c2("C2 Storage Advanced", "C2-HYBRID", "STORAGE", "UNKNOWN", "ADVANCED", 60, 2.0),
    _c2("C2 Storage Advanced 1TB", "C2-HYBRID", "STORAGE", "1T", "ADVANCED", 70, 4.0),
    _c2("C2 Storage Advanced 5TB", "C2-HYBRID", "STORAGE", "5T", "ADVANCED", 300, 1.5),
    _c2("C2 Active Insight Basic", "C2-HYBRID", "UNKNOWN", "UNKNOWN", "BASIC", 15, 0.5),
    _c2("C2_STORAGE_BUSINESS_1T", "C2-SAAS", "STORAGE", "1T", "BUSINESS", 80, 2.0),
    _c2("C2_STORAGE_PERSONAL_500G", "C2-SAAS", "STORAGE", "500G", "UNKNOWN", 36, 1.0),
    _c2("C2_BACKUP_BUSINESS_1T", "C2-SAAS", "BACKUP", "1T", "BUSINESS", 110, 4.0),
    _c2("C2_BACKUP_BUSINESS_2T", "C2-SAAS", "BACKUP", "2T", "BUSINESS", 200, 2.0),
    _c2("C2_BACKUP_ENTERPRISE_5T", "C2-SAAS", "BACKUP", "5T", "ENTERPRISE", 600, 0.8),
    _c2("C2_OBJECT_1T", "C2-SAAS", "OBJECT", "1T", "UNKNOWN", 84, 1.5),
    _c2("C2_OBJECT_5T", "C2-SAAS", "OBJECT", "5T", "UNKNOWN", 400, 0.5),
    _c2("C2_IDENTITY_BUSINESS", "C2-SAAS", "IDENTITY", "UNKNOWN", "BUSINESS", 30, 2.0),
    _c2("C2_PASSWORD_INDIVIDUAL", "C2-SAAS", "PASSWORD", "UNKNOWN", "INDIVIDUAL", 25, 1.0),
    _c2("C2_PASSWORD_BUSINESS", "C2-SAAS", "PASSWORD", "UNKNOWN", "BUSINESS", 36, 1.5),
    _c2("C2_TRANSFER_BUSINESS_1T", "C2-SAAS", "TRANSFER", "1T", "BUSINESS", 120, 1.0),
    _c2("C2_TRANSFER_PROFESSIONAL", "C2-SAAS", "TRANSFER", "UNKNOWN", "PROFESSIONAL", 90, 0.5),
    # C2 Surveillance is sold on the C2 sheets but classified SURVEILLANCE by the type rules.
    CatalogueEntry("C2 Surveillance Basic", "SURVEILLANCE", "SVS-C2-T1", 25, 1.0, "c2"),
    CatalogueEntry("C2 Surveillance Professional", "SURVEILLANCE", "SVS-C2-T2", 60, 0.5, "c2"),
)

_TAGS: Final = ("(EOL) ", "(PROMO) ", "(NEW) ", "(B2B) ")

# Quantity distributions by product type: (values, weights).
_QUANTITIES: Final[dict[str, tuple[tuple[int, ...], tuple[float, ...]]]] = {
    "SERVER": ((1, 2, 3, 4, 5, 10), (70, 14, 6, 4, 4, 2)),
    "DRIVE": ((1, 2, 4, 8, 12, 16, 24, 48), (15, 15, 25, 20, 10, 6, 6, 3)),
    "SVR-ACC": ((1, 2, 4, 10), (55, 25, 15, 5)),
    "SVR-EXW": ((1, 2, 5), (80, 15, 5)),
    "SURVEILLANCE": ((1, 2, 4, 8), (55, 20, 15, 10)),
    "DLG": ((1, 2, 5, 10, 20), (40, 25, 20, 10, 5)),
    "DSMLICENSE": ((1, 5, 10, 25), (50, 25, 15, 10)),
    "Other": ((1, 2), (85, 15)),
    "C2": ((1, 2, 5, 10, 25, 50, 100), (35, 20, 15, 12, 8, 6, 4)),
}


# --------------------------------------------------------------------------- customers

# Home currency by country; every other country invoices in USD.
_CURRENCY_BY_COUNTRY: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "Germany", "France", "Italy", "Spain", "Netherlands", "Belgium", "Austria", "Ireland",
            "Finland", "Portugal", "Greece", "Luxembourg", "Slovakia", "Slovenia", "Estonia",
            "Latvia", "Lithuania", "Croatia",
        ),
        "EUR",
    ),
    "Australia": "AUD",
    "New Zealand": "AUD",
    "Japan": "JPY",
    "Taiwan": "TWD",
}  # fmt: skip

# Where the resellers are; every other country in the map gets a small weight.
_COUNTRY_WEIGHTS: Final[dict[str, float]] = {
    "Germany": 12, "USA": 12, "France": 10, "UK": 6, "Japan": 6, "Italy": 5, "Spain": 5,
    "Australia": 5, "Netherlands": 4, "Taiwan": 4, "Poland": 3, "China": 3, "Canada": 3,
    "Korea": 2, "Brazil": 2, "Switzerland": 2, "Austria": 2, "Belgium": 2, "Sweden": 2, "Czech": 2,
    "Denmark": 1, "Norway": 1, "Finland": 1, "Ireland": 1, "New Zealand": 1, "Mexico": 1,
    "Portugal": 1, "Singapore": 1, "India": 1, "Turkey": 1, "United Arab Emirates": 1,
}  # fmt: skip
_TAIL_COUNTRY_WEIGHT: Final = 0.08

# The head of the customer long tail: big distributors, then partners with non-ASCII names.
_NAMED_CUSTOMERS: Final[tuple[tuple[str, str], ...]] = (
    ("Nordlicht Distribution GmbH", "Germany"),
    ("Atlas Data Supply Inc.", "USA"),
    ("EuroNAS Distribution SAS", "France"),
    ("Pacific Storage Distributors Pty Ltd", "Australia"),
    ("Kanto Storage Trading K.K.", "Japan"),
    ("Formosa Storage Trading Co., Ltd.", "Taiwan"),
    ("Britannia Networks Ltd", "UK"),
    ("Iberia Almacenamiento S.L.", "Spain"),
    ("Müller IT GmbH", "Germany"),
    ("Société Générale Informatique", "France"),
    ("東京データ株式会社", "Japan"),
    ("Łódź Systemy", "Poland"),
    ("Ørsted Datasystemer ApS", "Denmark"),
    ("São Paulo Redes Ltda", "Brazil"),
    ("Zürcher Speicher AG", "Switzerland"),
    ("台北資訊股份有限公司", "Taiwan"),
)
_N_SMALL_CUSTOMERS: Final = 420
_NAME_PREFIXES: Final = (
    "Alpha", "Blue", "Nord", "Sun", "Delta", "Prime", "Next", "Core", "Bright", "Iron", "Silver",
    "Metro", "Polar", "Apex", "Vertex", "Swift", "Green", "Clear", "Smart", "Orbit", "Nova", "Ridge",
)  # fmt: skip
_NAME_CORES: Final = (
    "Data", "Net", "Storage", "IT", "Systems", "Computing", "Tech", "Solutions", "Networks",
    "Digital", "Cloud", "Byte",
)  # fmt: skip
_NAME_SUFFIX: Final[dict[str, str]] = {
    "Germany": "GmbH", "Austria": "GmbH", "Switzerland": "AG", "France": "SARL", "Italy": "S.r.l.",
    "Spain": "S.L.", "Netherlands": "B.V.", "Belgium": "BV", "UK": "Ltd", "Ireland": "Ltd",
    "Australia": "Pty Ltd", "New Zealand": "Ltd", "Japan": "K.K.", "Taiwan": "Co., Ltd.",
    "China": "Co., Ltd.", "Poland": "Sp. z o.o.", "Czech": "s.r.o.", "Sweden": "AB",
}  # fmt: skip
_ZIPF_EXPONENT: Final = 1.07

_WAREHOUSE_BY_REGION: Final[dict[str, str]] = {
    "US": "US Warehouse",
    "JP": "JP Warehouse",
    "HQ": "TW Warehouse",
    "CN": "TW Warehouse",
}
_DEFAULT_WAREHOUSE: Final = "NL Warehouse"
_COMMENTS: Final[tuple[tuple[str | None, float], ...]] = (
    (None, 88.0),
    ("Project deal", 3.0),
    ("Stock replenishment", 3.0),
    ("Promo", 2.0),
    ("Lieferung an Lager München", 1.5),
    ("Livraison partielle", 1.5),
    ("至急", 1.0),
)
_RETURN_COMMENT: Final = "RMA return"

# Prices a line in a currency the rate table lacks (GBP); its revenue_usd stays null.
_UNMAPPED_PRICING_RATE: Final = 1.27
_WHOLE_UNIT_CURRENCIES: Final = frozenset({"JPY", "TWD"})


@dataclass(frozen=True)
class _Customer:
    name: str
    country: str
    currency: str


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. Shares are probabilities per line (or per cell for messiness)."""

    years: tuple[int, ...] = (2023, 2024)
    rows_per_year: int = 100_000
    """Hardware lines per year on average: rows_per_year * len(years) lines in all, spread
    over the days by seasonality and trend (so the partial last year gets somewhat fewer)."""
    seed: int = 7
    c2_share: float = 0.1
    """C2 lines of a year, as a share of that year's hardware lines."""
    unmapped_share: float = 0.001
    """Share of lines with an unmapped currency (GBP), and separately an unmapped country."""
    mess_share: float = 0.01
    """Base share of each kind of messiness; 0 writes a tidy workbook (no blank, subtotal,
    repeated-header rows, no text numbers or dates, no tags or stray spaces, no NULL strings)."""
    return_share: float = 0.005
    growth: float = 0.15
    """Yearly growth of the number of lines."""
    end_date: date | None = None
    """Last day with data, in the final year; None: five to six weeks into its Q4."""

    def __post_init__(self) -> None:
        if not self.years or list(self.years) != sorted(set(self.years)):
            raise ValueError(f"years must be non-empty, ascending and unique, got {self.years}")
        if self.rows_per_year < 1:
            raise ValueError(f"rows_per_year must be positive, got {self.rows_per_year}")
        for name in ("c2_share", "unmapped_share", "mess_share", "return_share"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {share}")
        if self.end_date is not None and self.end_date.year != self.years[-1]:
            raise ValueError(f"end_date {self.end_date} is not in the final year {self.years[-1]}")


@dataclass(frozen=True)
class SheetCounts:
    """What one sheet holds: data rows after the header, and of those, what kind."""

    sheet: str
    data_rows: int
    lines: int
    blank_rows: int
    subtotal_rows: int
    header_rows: int


@dataclass(frozen=True, eq=False)
class SampleReport:
    """A written sample: where, the last day with data, what each sheet holds, and the truth."""

    path: Path
    end_date: date
    sheets: tuple[SheetCounts, ...]
    truth: pl.DataFrame


def hardware_sheet_name(year: int) -> str:
    return str(year)


def c2_sheet_name(year: int) -> str:
    return f"{year}-C2"


def resolve_end_date(spec: SampleSpec) -> date:
    """The last day with data: spec.end_date, or 35 to 42 days into the final year's Q4."""
    if spec.end_date is not None:
        return spec.end_date
    return date(spec.years[-1], 10, 1) + timedelta(days=_rng(spec.seed, "end").randint(35, 42))


def generate_sales(spec: SampleSpec, mapping_dir: Path) -> pl.DataFrame:
    """The ground-truth lines, one row per real sales line, in workbook order.

    Columns (named and typed as in raw.sales_lines): source_sheet, source_row (1-based among the sheet's
    data rows after the header,
    messy rows included), invoice_number, invoice_date, ship_date, customer, country,
    region ('UNMAPPED' for a country not in the map), product (normalised, no tag),
    item_code, product_type, sub_cat, tier, c2_service_family, c2_capacity, c2_plan,
    quantity, currency, price, discount, tt_discount, total_local, revenue_usd (null for an
    unmapped currency), delivery_from, ship_to, comments.
    """
    return _truth(_plan(spec, mapping_dir), mapping_dir)


def write_workbook(path: Path, spec: SampleSpec, mapping_dir: Path) -> SampleReport:
    """Generate the sample and write it as a messy .xlsx at path."""
    sheets = _plan(spec, mapping_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    # A fixed creation time keeps the file byte-identical for a seed.
    workbook.set_properties({"created": datetime(spec.years[-1], 1, 1)})
    formats = _Formats(
        date=workbook.add_format({"num_format": "yyyy-mm-dd"}),
        money=workbook.add_format({"num_format": "#,##0.00"}),
        header=workbook.add_format({"bold": True}),
    )
    for sheet in sheets:
        _write_sheet(workbook, sheet, _rng(spec.seed, sheet.name, "render"), spec.mess_share, formats)
    workbook.close()
    counts = tuple(sheet.counts() for sheet in sheets)
    return SampleReport(path, resolve_end_date(spec), counts, _truth(sheets, mapping_dir))


# --------------------------------------------------------------------------- generation


@dataclass
class _Lines:
    """The real lines of one sheet, clean, in workbook order."""

    invoice_number: list[str] = field(default_factory=list)
    invoice_date: list[date] = field(default_factory=list)
    ship_date: list[date | None] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    entry: list[int] = field(default_factory=list)
    item_code: list[str | None] = field(default_factory=list)
    quantity: list[int] = field(default_factory=list)
    currency: list[str] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    discount: list[float | None] = field(default_factory=list)
    tt_discount: list[float | None] = field(default_factory=list)
    total_local: list[float] = field(default_factory=list)
    delivery_from: list[str | None] = field(default_factory=list)
    ship_to: list[str | None] = field(default_factory=list)
    comments: list[str | None] = field(default_factory=list)


# Layout codes; a row >= 0 is the index of a real line.
_BLANK: Final = -1
_HEADER: Final = -2
_SUBTOTAL: Final = -3

SubtotalStyle = Literal["customer", "pi"]


@dataclass
class _Sheet:
    name: str
    lines: _Lines
    layout: list[int]
    subtotals: list[tuple[SubtotalStyle, float]]
    """In layout order, one per _SUBTOTAL row."""

    def counts(self) -> SheetCounts:
        return SheetCounts(
            sheet=self.name,
            data_rows=len(self.layout),
            lines=len(self.lines.invoice_number),
            blank_rows=self.layout.count(_BLANK),
            subtotal_rows=self.layout.count(_SUBTOTAL),
            header_rows=self.layout.count(_HEADER),
        )


def _rng(seed: int, *purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512, so streams are stable across runs and platforms.
    return random.Random(":".join(("syno-sample", str(seed), *purpose)))


def _read_regions(mapping_dir: Path) -> dict[str, str]:
    frame = pl.read_csv(mapping_dir / COUNTRY_FILE, infer_schema=False)
    return {
        country.strip(): region.strip()
        for country, region in frame.select("Country", "Region").iter_rows()
        if country is not None and region is not None
    }


def _read_rates(mapping_dir: Path) -> dict[str, float]:
    frame = pl.read_csv(mapping_dir / RATES_FILE, schema_overrides={"rate_to_usd": pl.Float64})
    return {currency.strip(): rate for currency, rate in frame.select("currency", "rate_to_usd").iter_rows()}


def _customers(seed: int, regions: dict[str, str]) -> tuple[list[_Customer], list[float]]:
    """The customers, biggest first, and their cumulative Zipf weights."""
    rng = _rng(seed, "customers")
    countries = list(regions)
    weights = [_COUNTRY_WEIGHTS.get(country, _TAIL_COUNTRY_WEIGHT) for country in countries]
    named = [(name, country) for name, country in _NAMED_CUSTOMERS]
    taken = {name for name, _ in named}
    while len(named) < len(_NAMED_CUSTOMERS) + _N_SMALL_CUSTOMERS:
        country = rng.choices(countries, weights)[0]
        name = f"{rng.choice(_NAME_PREFIXES)} {rng.choice(_NAME_CORES)} {_NAME_SUFFIX.get(country, 'Inc.')}"
        if name in taken:
            name = f"{name} {country}"
        if name not in taken:
            taken.add(name)
            named.append((name, country))
    customers = [_Customer(name, country, _CURRENCY_BY_COUNTRY.get(country, "USD")) for name, country in named]
    zipf = [1.0 / rank**_ZIPF_EXPONENT for rank in range(1, len(customers) + 1)]
    return customers, list(accumulate(zipf))


def _day_weight(day: date, first_day: date, growth: float) -> float:
    weekday = (1.0, 1.0, 1.0, 1.0, 1.0, 0.15, 0.05)[day.weekday()]
    quarter = (0.9, 1.0, 0.95, 1.2)[(day.month - 1) // 3]
    month_in_quarter = (0.9, 1.0, 1.15)[(day.month - 1) % 3]
    trend = math.exp(math.log1p(growth) * (day - first_day).days / 365.25)
    return weekday * quarter * month_in_quarter * trend


def _days(year: int, end: date) -> list[date]:
    last = min(date(year, 12, 31), end)
    return [date(year, 1, 1) + timedelta(days=k) for k in range((last - date(year, 1, 1)).days + 1)]


def _allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split total in proportion to weights, by largest remainder."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: total - sum(counts)]:
        counts[k] += 1
    return counts


def _sheet_lines(
    spec: SampleSpec,
    sheet: str,
    kind: SheetKind,
    n: int,
    days: list[date],
    day_weights: list[float],
    customers: tuple[list[_Customer], list[float]],
    regions: dict[str, str],
    rates: dict[str, float],
) -> _Lines:
    rng = _rng(spec.seed, sheet, "lines")
    lines = _Lines()
    if n == 0:
        return lines
    entries = [k for k, entry in enumerate(CATALOGUE) if entry.sheet_kind == kind]
    line_dates = sorted(rng.choices(days, day_weights, k=n))
    line_entries = rng.choices(entries, [CATALOGUE[k].weight for k in entries], k=n)

    # Invoices: runs of consecutive lines (sorted by date) sharing a customer and a date.
    sizes = rng.choices(range(1, 9), (40, 20, 14, 10, 6, 4, 3, 3), k=n)
    starts = list(accumulate([0, *sizes]))
    starts = [s for s in starts if s < n]
    customer_list, customer_cum = customers
    invoice_customers = rng.choices(customer_list, cum_weights=customer_cum, k=len(starts))
    prefix = "PI" if kind == "hardware" else "C2PI"
    year2 = f"{line_dates[0].year % 100:02d}"

    quantity_draws = {kind_: rng.choices(values, weights, k=n) for kind_, (values, weights) in _QUANTITIES.items()}
    # A blank Discount cell means no discount: the truth is null and Total uses 0.
    discounts = rng.choices((None, 0.0, 0.03, 0.05, 0.1, 0.15), (55, 15, 8, 10, 8, 4), k=n)
    tt_discounts = rng.choices((None, 0.0, 0.02), (85, 10, 5), k=n)
    comments = rng.choices([c for c, _ in _COMMENTS], [w for _, w in _COMMENTS], k=n)
    ship_delays = rng.choices((0, 1, 2, 3, 5, 7, 10), (20, 25, 20, 15, 10, 6, 4), k=n)
    last_day = days[-1]

    for invoice, start in enumerate(starts):
        stop = starts[invoice + 1] if invoice + 1 < len(starts) else n
        customer = invoice_customers[invoice]
        invoice_date = line_dates[start]
        currency = customer.currency if rng.random() < 0.9 else "USD"
        region = regions.get(customer.country, UNMAPPED_REGION)
        warehouse = _WAREHOUSE_BY_REGION.get(region, _DEFAULT_WAREHOUSE)
        for i in range(start, stop):
            entry = CATALOGUE[line_entries[i]]
            line_currency = UNMAPPED_CURRENCY if rng.random() < spec.unmapped_share else currency
            country = UNMAPPED_COUNTRY if rng.random() < spec.unmapped_share else customer.country
            profile = "C2" if kind == "c2" else entry.product_type
            quantity = quantity_draws[profile][i]
            is_return = rng.random() < spec.return_share
            if is_return:
                quantity = -quantity
            rate = rates.get(line_currency, _UNMAPPED_PRICING_RATE)
            decimals = 0 if line_currency in _WHOLE_UNIT_CURRENCIES else 2
            price = round(entry.list_price_usd * rng.uniform(0.92, 1.04) / rate, decimals)
            ship_date = None
            if kind == "hardware" and rng.random() > 0.02:
                ship_date = min(invoice_date + timedelta(days=ship_delays[i]), last_day)

            lines.invoice_number.append(f"{prefix}{year2}{invoice + 1:06d}")
            lines.invoice_date.append(invoice_date)
            lines.ship_date.append(ship_date)
            lines.customer.append(customer.name)
            lines.country.append(country)
            lines.entry.append(line_entries[i])
            lines.item_code.append(None if rng.random() < 0.03 else _item_code(entry))
            lines.quantity.append(quantity)
            lines.currency.append(line_currency)
            lines.price.append(price)
            lines.discount.append(discounts[i])
            lines.tt_discount.append(tt_discounts[i])
            lines.total_local.append(round(quantity * price * (1.0 - (discounts[i] or 0.0)), 2))
            lines.delivery_from.append(None if rng.random() < 0.02 else warehouse)
            lines.ship_to.append(customer.name if rng.random() < 0.25 else None)
            lines.comments.append(_RETURN_COMMENT if is_return else comments[i])
    return lines


def _item_code(entry: CatalogueEntry) -> str:
    return f"SY{zlib.crc32(entry.product.encode()) % 1_000_000:06d}"


def _layout(
    lines: _Lines, rng: random.Random, mess_share: float
) -> tuple[list[int], list[tuple[SubtotalStyle, float]]]:
    """Where the real lines go among blank, subtotal (one per month) and repeated-header rows."""
    n = len(lines.invoice_number)
    layout: list[int] = []
    subtotals: list[tuple[SubtotalStyle, float]] = []
    if mess_share == 0.0:
        return list(range(n)), subtotals
    repeats = 1 + n // 50_000
    header_before = {n * (k + 1) // (repeats + 1) for k in range(repeats)} if n >= 2 else set()
    block_total = 0.0
    for i in range(n):
        if i in header_before:
            layout.append(_HEADER)
        if rng.random() < mess_share / 2:
            layout.append(_BLANK)
        layout.append(i)
        block_total += lines.total_local[i]
        if i == n - 1 or lines.invoice_date[i + 1].month != lines.invoice_date[i].month:
            if rng.random() < 0.5:
                layout.append(_BLANK)
            layout.append(_SUBTOTAL)
            subtotals.append(("customer" if rng.random() < 0.7 else "pi", round(block_total, 2)))
            block_total = 0.0
    return layout, subtotals


def _plan(spec: SampleSpec, mapping_dir: Path) -> list[_Sheet]:
    regions = _read_regions(mapping_dir)
    rates = _read_rates(mapping_dir)
    customers = _customers(spec.seed, regions)
    end = resolve_end_date(spec)
    first_day = date(spec.years[0], 1, 1)
    year_days = [_days(year, end) for year in spec.years]
    year_weights = [[_day_weight(day, first_day, spec.growth) for day in days] for days in year_days]
    hardware_counts = _allocate(spec.rows_per_year * len(spec.years), [sum(w) for w in year_weights])

    sheets: list[_Sheet] = []
    for year, days, weights, n in zip(spec.years, year_days, year_weights, hardware_counts, strict=True):
        sheet_specs: tuple[tuple[SheetKind, str, int], ...] = (
            ("hardware", hardware_sheet_name(year), n),
            ("c2", c2_sheet_name(year), round(n * spec.c2_share)),
        )
        for kind, name, count in sheet_specs:
            lines = _sheet_lines(spec, name, kind, count, days, weights, customers, regions, rates)
            layout, subtotals = _layout(lines, _rng(spec.seed, name, "layout"), spec.mess_share)
            sheets.append(_Sheet(name, lines, layout, subtotals))
    return sheets


def _truth(sheets: list[_Sheet], mapping_dir: Path) -> pl.DataFrame:
    regions = _read_regions(mapping_dir)
    rates = _read_rates(mapping_dir)
    frames = []
    for sheet in sheets:
        lines = sheet.lines
        entries = [CATALOGUE[k] for k in lines.entry]
        sheet_rows = [row for row, code in enumerate(sheet.layout, start=1) if code >= 0]
        frames.append(
            pl.DataFrame(
                {
                    "source_sheet": [sheet.name] * len(entries),
                    "source_row": sheet_rows,
                    "invoice_number": lines.invoice_number,
                    "invoice_date": lines.invoice_date,
                    "ship_date": lines.ship_date,
                    "customer": lines.customer,
                    "country": lines.country,
                    "product": [e.product for e in entries],
                    "item_code": lines.item_code,
                    "product_type": [e.product_type for e in entries],
                    "sub_cat": [e.sub_cat for e in entries],
                    "tier": [e.tier for e in entries],
                    "c2_service_family": [e.c2_service_family for e in entries],
                    "c2_capacity": [e.c2_capacity for e in entries],
                    "c2_plan": [e.c2_plan for e in entries],
                    "quantity": lines.quantity,
                    "currency": lines.currency,
                    "price": lines.price,
                    "discount": lines.discount,
                    "tt_discount": lines.tt_discount,
                    "total_local": lines.total_local,
                    "delivery_from": lines.delivery_from,
                    "ship_to": lines.ship_to,
                    "comments": lines.comments,
                },
                schema=_TRUTH_SCHEMA,
            )
        )
    truth = pl.concat(frames) if frames else pl.DataFrame(schema=_TRUTH_SCHEMA)
    return truth.with_columns(
        pl.col("country").replace_strict(regions, default=UNMAPPED_REGION, return_dtype=pl.String).alias("region"),
        (pl.col("currency").replace_strict(rates, default=None, return_dtype=pl.Float64) * pl.col("total_local")).alias(
            "revenue_usd"
        ),
    ).select(TRUTH_COLUMNS)


TRUTH_COLUMNS: Final[tuple[str, ...]] = (
    "source_sheet", "source_row", "invoice_number", "invoice_date", "ship_date", "customer", "country",
    "region", "product", "item_code", "product_type", "sub_cat", "tier", "c2_service_family",
    "c2_capacity", "c2_plan", "quantity", "currency", "price", "discount", "tt_discount",
    "total_local", "revenue_usd", "delivery_from", "ship_to", "comments",
)  # fmt: skip
"""The true lines carry these raw.sales_lines columns, named and typed as the table is (one home: its schema)."""

_TRUTH_SCHEMA: Final = {
    name: SALES_LINES_SCHEMA[name] for name in TRUTH_COLUMNS if name not in ("region", "revenue_usd")
}


# --------------------------------------------------------------------------- writing


class _ExcelDate(int):
    """An Excel day serial to be written with a date format (a real Excel date)."""


_EXCEL_EPOCH: Final = date(1899, 12, 30)

Cell = str | float | int | None


@dataclass(frozen=True)
class _Formats:
    date: object
    money: object
    header: object


def _spaced(value: str, rng: random.Random) -> str:
    return rng.choice((f" {value}", f"{value} ", f"  {value}  ", f"{value}  "))


def _render_date(day: date | None, rng: random.Random, p: float) -> Cell:
    if day is None:
        return _render_null(rng, p)
    u = rng.random()
    serial = (day - _EXCEL_EPOCH).days
    if u < p:
        return serial  # a bare serial number, no date format
    if u < 2 * p:
        return day.isoformat()
    return _ExcelDate(serial)


def _render_null(rng: random.Random, p: float) -> Cell:
    u = rng.random()
    if u < 3 * p:
        return "NULL"
    if u < 5 * p:
        return "null"
    return None


def _render_optional(value: str | float | None, rng: random.Random, p: float) -> Cell:
    return _render_null(rng, p) if value is None else value


def _render_line(lines: _Lines, i: int, rng: random.Random, p: float) -> tuple[Cell, ...]:
    product = CATALOGUE[lines.entry[i]].name
    if rng.random() < 3 * p:
        product = rng.choice(_TAGS) + product
    if rng.random() < p:
        product = _spaced(product, rng)
    customer = lines.customer[i]
    if rng.random() < p:
        customer = _spaced(customer, rng)
    country = lines.country[i]
    if rng.random() < p:
        country = _spaced(country, rng)
    quantity: Cell = lines.quantity[i]
    if rng.random() < p:
        quantity = f" {lines.quantity[i]}"
    price: Cell = lines.price[i]
    if rng.random() < p:
        price = f"{lines.price[i]:,.2f}"
    total: Cell = lines.total_local[i]
    if rng.random() < p:
        total = f"{lines.total_local[i]:,.2f}"
    return (
        lines.invoice_number[i],
        _render_date(lines.invoice_date[i], rng, p),
        _render_date(lines.ship_date[i], rng, p),
        customer,
        country,
        product,
        _render_optional(lines.item_code[i], rng, p),
        quantity,
        lines.currency[i],
        price,
        total,
        _render_optional(lines.tt_discount[i], rng, p),
        _render_optional(lines.discount[i], rng, p),
        _render_optional(lines.delivery_from[i], rng, p),
        _render_optional(lines.ship_to[i], rng, p),
        _render_optional(lines.comments[i], rng, p),
    )


_PI: Final = HEADER.index("PI")
_CUSTOMER: Final = HEADER.index("Customer")
_TOTAL: Final = HEADER.index("Total")
_MONEY_COLUMNS: Final = frozenset({HEADER.index("Price"), _TOTAL})


def _subtotal_row(style: SubtotalStyle, total: float) -> tuple[Cell, ...]:
    row: list[Cell] = [None] * len(HEADER)
    row[_CUSTOMER if style == "customer" else _PI] = "Subtotal" if style == "customer" else "TOTAL"
    row[_TOTAL] = total
    return tuple(row)


def _write_sheet(workbook: object, sheet: _Sheet, rng: random.Random, p: float, formats: _Formats) -> None:
    worksheet = workbook.add_worksheet(sheet.name)  # type: ignore[attr-defined]  # xlsxwriter is untyped
    worksheet.freeze_panes(1, 0)
    for col, name in enumerate(HEADER):
        worksheet.write_string(0, col, name, formats.header)
    write_string, write_number = worksheet.write_string, worksheet.write_number
    number_formats = [formats.money if col in _MONEY_COLUMNS else None for col in range(len(HEADER))]
    subtotals = iter(sheet.subtotals)
    for row, code in enumerate(sheet.layout, start=1):
        if code == _BLANK:
            continue
        if code == _HEADER:
            cells: tuple[Cell, ...] = HEADER
        elif code == _SUBTOTAL:
            cells = _subtotal_row(*next(subtotals))
        else:
            cells = _render_line(sheet.lines, code, rng, p)
        for col, value in enumerate(cells):
            if value is None:
                continue
            if type(value) is str:
                write_string(row, col, value)
            elif type(value) is _ExcelDate:
                write_number(row, col, value, formats.date)
            else:
                write_number(row, col, value, number_formats[col])
