"""The customers: named distributors and a long tail of small resellers, their countries and
home currencies, drawn once per seed with Zipf weights; and what a line takes from them (the
warehouse it ships from, its comment, how its price is rounded)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from syno_sample.streams import stream

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

WAREHOUSE_BY_REGION: Final[dict[str, str]] = {
    "US": "US Warehouse",
    "JP": "JP Warehouse",
    "HQ": "TW Warehouse",
    "CN": "TW Warehouse",
}
DEFAULT_WAREHOUSE: Final = "NL Warehouse"
COMMENTS: Final[tuple[tuple[str | None, float], ...]] = (
    (None, 88.0),
    ("Project deal", 3.0),
    ("Stock replenishment", 3.0),
    ("Promo", 2.0),
    ("Lieferung an Lager München", 1.5),
    ("Livraison partielle", 1.5),
    ("至急", 1.0),
)
RETURN_COMMENT: Final = "RMA return"

# Prices a line in a currency the rate table lacks (GBP); its revenue_usd stays null.
UNMAPPED_PRICING_RATE: Final = 1.27
WHOLE_UNIT_CURRENCIES: Final = frozenset({"JPY", "TWD"})


@dataclass(frozen=True)
class Customer:
    name: str
    country: str
    currency: str


def draw_customers(seed: int, regions: dict[str, str]) -> tuple[list[Customer], list[float]]:
    """The customers, biggest first, and their cumulative Zipf weights."""
    rng = stream(seed, "customers")
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
    customers = [Customer(name, country, _CURRENCY_BY_COUNTRY.get(country, "USD")) for name, country in named]
    zipf = [1.0 / rank**_ZIPF_EXPONENT for rank in range(1, len(customers) + 1)]
    return customers, list(accumulate(zipf))
