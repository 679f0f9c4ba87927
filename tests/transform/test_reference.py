"""Loading the mapping tables: trimming, blank rows, case-insensitive countries, versions, clear errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_transform.reference import ReferenceDataError, load_reference

REAL_MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"

MINIMAL = {
    "Mapped_Countries_with_Regions.csv": "Country,Region\nGermany,DE\n",
    "exchange_rates.csv": "currency,rate_to_usd\nUSD,1.0\n",
    "device_to_bay.csv": "Product,Bays\nDS920+,4\n",
    "product_rules.csv": "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,10,,^DS,,SERVER,\n",
    "c2_keywords.csv": "field,order,keyword,value\nplan,1,ADV,ADVANCED\n",
}


def write_mapping_dir(root: Path, **files: str | bytes) -> Path:
    """A mapping dir with the minimal files, some replaced (keys: file names with '.' as '__')."""
    root.mkdir(parents=True, exist_ok=True)
    contents: dict[str, str | bytes] = dict(MINIMAL)
    contents.update({name.replace("__", "."): text for name, text in files.items()})
    for name, content in contents.items():
        data = content if isinstance(content, bytes) else content.encode()
        (root / name).write_bytes(data)
    return root


def test_the_real_mapping_tables_load_with_their_content_hashes() -> None:
    """All five shipped CSVs load; each version is the sha256 of the file's bytes."""
    reference = load_reference(REAL_MAPPING_DIR)

    expected_versions = {
        name: hashlib.sha256((REAL_MAPPING_DIR / name).read_bytes()).hexdigest()
        for name in (
            "Mapped_Countries_with_Regions.csv",
            "exchange_rates.csv",
            "device_to_bay.csv",
            "product_rules.csv",
            "c2_keywords.csv",
        )
    }
    assert reference.versions == expected_versions
    # 200 country lines, 'Pakistan' and 'PAKISTAN' (both HQ) kept once.
    assert reference.row_counts == {
        "Mapped_Countries_with_Regions.csv": 199,
        "exchange_rates.csv": 5,
        "device_to_bay.csv": 114,
        "product_rules.csv": 51,
        "c2_keywords.csv": 17,
    }
    assert reference.countries.schema == pl.Schema({"country": pl.String, "region": pl.String})
    assert reference.exchange_rates.schema == pl.Schema({"currency": pl.String, "rate_to_usd": pl.Float64})
    assert reference.device_to_bay.schema == pl.Schema({"product": pl.String, "bays": pl.Int32})
    assert reference.product_rules.schema == pl.Schema(
        {
            "stage": pl.String,
            "order": pl.Int32,
            "when_type": pl.String,
            "pattern": pl.String,
            "and_pattern": pl.String,
            "type": pl.String,
            "sub_cat": pl.String,
        }
    )
    assert reference.c2_keywords.schema == pl.Schema(
        {"field": pl.String, "order": pl.Int32, "keyword": pl.String, "value": pl.String}
    )


def test_the_real_country_map_keeps_quoted_commas_and_has_clean_cells() -> None:
    """CRLF line ends and quoted commas parse into whole names; regions are the eight known ones."""
    countries = load_reference(REAL_MAPPING_DIR).countries

    quoted = countries.filter(pl.col("country").is_in(["Bonaire, Sint Eustatius and Saba", "Virgin Islands, U.S."]))
    assert_frame_equal(
        quoted.sort("country"),
        pl.DataFrame({"country": ["Bonaire, Sint Eustatius and Saba", "Virgin Islands, U.S."], "region": ["HQ", "US"]}),
    )
    assert sorted(countries.get_column("region").unique().to_list()) == [
        "CN",
        "DE",
        "FR",
        "HQ",
        "JP",
        "Others",
        "UK",
        "US",
    ]
    stray = countries.filter(
        (pl.col("country") != pl.col("country").str.strip_chars())
        | (pl.col("region") != pl.col("region").str.strip_chars())
    )
    assert stray.height == 0


def test_the_real_rules_and_keywords_are_sorted_by_stage_and_order() -> None:
    """Type rules come first, each stage in ascending order; the C2 keywords cover the three fields."""
    reference = load_reference(REAL_MAPPING_DIR)

    rules = reference.product_rules
    assert rules.get_column("stage").unique(maintain_order=True).to_list() == ["type", "sub_cat"]
    for stage in ("type", "sub_cat"):
        orders = rules.filter(pl.col("stage") == stage).get_column("order")
        assert orders.is_sorted()
    assert_frame_equal(
        rules.filter(pl.col("stage") == "type").head(2),
        pl.DataFrame(
            {
                "stage": ["type", "type"],
                "order": [10, 20],
                "when_type": [None, None],
                "pattern": ["^(HAT|HAS|SNV|SAT5)", "^(DS|DX|RS|RX|SA|HD|FS|FX|UC)[^ _]*$"],
                "and_pattern": [None, None],
                "type": ["DRIVE", "SERVER"],
                "sub_cat": [None, None],
            },
            schema=rules.schema,
        ),
    )
    assert reference.c2_keywords.get_column("field").unique().sort().to_list() == [
        "capacity",
        "plan",
        "service_family",
    ]


def test_cells_are_trimmed_blank_rows_dropped_and_crlf_bom_and_quoted_commas_read(tmp_path: Path) -> None:
    """A messy CSV (BOM, CRLF, stray spaces, blank lines, quoted commas) reads as clean cells."""
    countries = (
        '\ufeff Country , Region \r\n Germany ,DE \r\n,\r\n\r\n"Korea, Republic of" , HQ\r\n  ,  \r\n'
    ).encode()
    mapping_dir = write_mapping_dir(tmp_path / "m", Mapped_Countries_with_Regions__csv=countries)

    reference = load_reference(mapping_dir)

    assert_frame_equal(
        reference.countries,
        pl.DataFrame({"country": ["Germany", "Korea, Republic of"], "region": ["DE", "HQ"]}),
    )


def test_headers_match_case_insensitively_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    """'CURRENCY'/'Rate_To_USD' are the currency/rate columns; a 'note' column is not loaded."""
    mapping_dir = write_mapping_dir(
        tmp_path / "m", exchange_rates__csv="CURRENCY,Rate_To_USD,note\n eur ,1.25,from ECB\n"
    )

    reference = load_reference(mapping_dir)

    assert_frame_equal(reference.exchange_rates, pl.DataFrame({"currency": ["EUR"], "rate_to_usd": [1.25]}))


def test_a_country_repeated_in_another_case_with_the_same_region_is_kept_once(tmp_path: Path) -> None:
    """'Pakistan' and ' PAKISTAN' both HQ: one row, the first spelling."""
    mapping_dir = write_mapping_dir(
        tmp_path / "m", Mapped_Countries_with_Regions__csv="Country,Region\nPakistan,HQ\n PAKISTAN ,HQ\nChina,CN\n"
    )

    reference = load_reference(mapping_dir)

    assert_frame_equal(reference.countries, pl.DataFrame({"country": ["Pakistan", "China"], "region": ["HQ", "CN"]}))


def test_a_country_given_two_regions_is_an_error_naming_the_file_and_lines(tmp_path: Path) -> None:
    mapping_dir = write_mapping_dir(
        tmp_path / "m", Mapped_Countries_with_Regions__csv="Country,Region\nPakistan,HQ\nchina,CN\nPAKISTAN,DE\n"
    )

    with pytest.raises(ReferenceDataError, match=r"Mapped_Countries_with_Regions\.csv: country 'pakistan'.*lines 2, 4"):
        load_reference(mapping_dir)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    mapping_dir = write_mapping_dir(tmp_path / "m")
    (mapping_dir / "c2_keywords.csv").unlink()

    with pytest.raises(ReferenceDataError, match=r"^c2_keywords\.csv: mapping table not found"):
        load_reference(mapping_dir)


def test_a_missing_column_is_an_error_naming_the_file_and_column(tmp_path: Path) -> None:
    mapping_dir = write_mapping_dir(tmp_path / "m", exchange_rates__csv="currency,rate\nUSD,1.0\n")

    with pytest.raises(ReferenceDataError, match=r"^exchange_rates\.csv: missing column\(s\) rate_to_usd"):
        load_reference(mapping_dir)


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    mapping_dir = write_mapping_dir(tmp_path / "m", device_to_bay__csv="")

    with pytest.raises(ReferenceDataError, match=r"^device_to_bay\.csv: the file is empty"):
        load_reference(mapping_dir)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    mapping_dir = write_mapping_dir(
        tmp_path / "m", Mapped_Countries_with_Regions__csv="Country,Region\nCura\xe7ao,US\n".encode("cp1252")
    )

    with pytest.raises(ReferenceDataError, match=r"^Mapped_Countries_with_Regions\.csv: not UTF-8"):
        load_reference(mapping_dir)


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        (
            "exchange_rates.csv",
            "currency,rate_to_usd\nUSD,1.0\nEUR,abc\n",
            r"rate_to_usd is not a number on line\(s\) 3",
        ),
        ("exchange_rates.csv", "currency,rate_to_usd\nUSD,0\n", r"rate_to_usd must be above 0 \(line\(s\) 2\)"),
        ("exchange_rates.csv", "currency,rate_to_usd\nUSD,1\nusd,2\n", r"currency 'USD' is given twice"),
        ("exchange_rates.csv", "currency,rate_to_usd\nUSD,\n", r"column rate_to_usd is blank on line\(s\) 2"),
        ("device_to_bay.csv", "Product,Bays\nDS920+,4.5\n", r"bays is not an integer on line\(s\) 2"),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,10,,^(DS,,SERVER,\n",
            r"line 2: pattern '\^\(DS' is not a valid regular expression",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,10,,^DS,[x,SERVER,\n",
            r"line 2: and_pattern '\[x' is not a valid regular expression",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\nkind,10,,^DS,,SERVER,\n",
            r"stage must be one of type, sub_cat; found 'kind' on line\(s\) 2",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,10,,^DS,,SERVER,\ntype,10,,^RS,,SERVER,\n",
            r"\(stage, order\) must be unique; repeated on line\(s\) 2, 3",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,10,,^DS,,,\n",
            r"column type is blank on line\(s\) 2",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\nsub_cat,10,,^DS,,,SVR\n",
            r"column when_type is blank on line\(s\) 2",
        ),
        (
            "product_rules.csv",
            "stage,order,when_type,pattern,and_pattern,type,sub_cat\ntype,first,,^DS,,SERVER,\n",
            r"order is not an integer on line\(s\) 2",
        ),
        ("c2_keywords.csv", "field,order,keyword,value\ncolour,1,RED,RED\n", r"field must be one of"),
        (
            "Mapped_Countries_with_Regions.csv",
            "Country,Region\nGermany,DE\nKorea, Republic of,HQ\n",
            r"more cells than header columns on line\(s\) 3",
        ),
    ],
)
def test_bad_reference_rows_are_errors_naming_the_file_and_problem(
    tmp_path: Path, file_name: str, content: str, message: str
) -> None:
    mapping_dir = write_mapping_dir(tmp_path / "m", **{file_name.replace(".", "__"): content})

    with pytest.raises(ReferenceDataError, match=rf"^{file_name.replace('.', chr(92) + '.')}: .*{message}"):
        load_reference(mapping_dir)


def test_reference_error_is_a_value_error() -> None:
    """Callers that catch bad input as ValueError also catch bad reference data."""
    assert issubclass(ReferenceDataError, ValueError)


def test_the_version_of_a_file_changes_with_its_content_only(tmp_path: Path) -> None:
    """Editing one table changes that table's version; the others keep theirs."""
    mapping_dir = tmp_path / "m"
    shutil.copytree(REAL_MAPPING_DIR, mapping_dir)
    before = load_reference(mapping_dir).versions

    with (mapping_dir / "exchange_rates.csv").open("a") as rates:
        rates.write("\nGBP,1.27\n")
    after = load_reference(mapping_dir).versions

    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"exchange_rates.csv"}


def test_new_rows_in_every_table_are_loaded_without_code_change(tmp_path: Path) -> None:
    """A new country, currency, product, rule and keyword appended to the real files show up."""
    mapping_dir = tmp_path / "m"
    shutil.copytree(REAL_MAPPING_DIR, mapping_dir)
    appended = {
        "Mapped_Countries_with_Regions.csv": '\r\n"Atlantis, Lost City of",FR\r\n',
        "exchange_rates.csv": "\nGBP,1.27\n",
        "device_to_bay.csv": "\nDS1825+,8\n",
        "product_rules.csv": "\ntype,95,,^BEE,,BEEDRIVE,\nsub_cat,85,BEEDRIVE,.,,,BEE-D\n",
        "c2_keywords.csv": "\ncapacity,6,10T,10T\n",
    }
    for name, text in appended.items():
        with (mapping_dir / name).open("a", newline="") as file:
            file.write(text)

    reference = load_reference(mapping_dir)

    assert reference.countries.row(-1) == ("Atlantis, Lost City of", "FR")
    assert reference.exchange_rates.row(-1) == ("GBP", 1.27)
    assert reference.device_to_bay.row(-1) == ("DS1825+", 8)
    assert reference.product_rules.filter(pl.col("order").is_in([95, 85])).rows() == [
        ("type", 95, None, "^BEE", None, "BEEDRIVE", None),
        ("sub_cat", 85, "BEEDRIVE", ".", None, None, "BEE-D"),
    ]
    assert reference.c2_keywords.filter(pl.col("keyword") == "10T").rows() == [("capacity", 6, "10T", "10T")]
