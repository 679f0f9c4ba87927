"""The five events of the pipeline (DESIGN.md section 3) as versioned pydantic v2 models.

Events are past-tense facts: frozen, extra fields forbidden, every field described so the
AsyncAPI document explains itself. `run_id` names one pass of one workbook through the four
stages; `snapshot_id` is the sha256 of the workbook file.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from syno_shared.errors import InputRejected

SCHEMA_VERSION = 2  # 2: facts carried downstream (workbook, quality), no stage reads another's tables

Stage = Literal["ingestion", "transform", "forecast", "activation"]
Publication = Literal["published", "kept_aside_older", "published_forced", "rehearsal"]
PUBLISHED: tuple[Publication, ...] = ("published", "published_forced")
"""The publications after which the stable names show the snapshot; 'kept_aside_older' and 'rehearsal' never."""


SNAPSHOT_ID_PATTERN = r"^[0-9a-f]{64}$"  # sha256 of the file, lower-case hex
UNKNOWN_SNAPSHOT = "unknown"  # a failure whose input named no valid snapshot (a poison message)
FAILED_SNAPSHOT_ID_PATTERN = rf"^([0-9a-f]{{64}}|{UNKNOWN_SNAPSHOT})$"


def snapshot_or_unknown(value: object) -> str:
    """A snapshot id a failure may carry: the input's when it is one, else 'unknown' (never a hostile string)."""
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else UNKNOWN_SNAPSHOT


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=SCHEMA_VERSION, description="Version of this event's schema.")

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version} is not the version this service reads ({SCHEMA_VERSION}): "
                "upgrade the service, or publish the event again from a service of this version"
            )
        return version

    run_id: str = Field(description="One pass of one workbook through the pipeline (uuid4 hex).")
    snapshot_id: str = Field(
        description="sha256 of the workbook file: the snapshot's identity.", pattern=SNAPSHOT_ID_PATTERN
    )
    produced_at: datetime = Field(default_factory=utc_now, description="When the event was produced (UTC).")


def relative_inside(path: str) -> str:
    """A path an event may carry: relative to SYNO_DATA_DIR and never climbing out of it."""
    parts = PurePosixPath(path.replace("\\", "/"))
    if parts.is_absolute() or ".." in parts.parts or not path.strip():
        raise ValueError(f"{path!r} is not a path inside the data folder (relative, no '..')")
    return path


def resolve_inside(data_dir: Path, path: str) -> Path:
    """Where a path an event carries really leads, links followed: refused unless it stays in `data_dir`
    (a link planted in the data folder must not lead a stage outside it)."""
    resolved = (data_dir / relative_inside(path)).resolve()
    if not resolved.is_relative_to(data_dir.resolve()):
        raise InputRejected(f"{path!r} leads outside the data folder (to {resolved})", code="path_outside_data")
    return resolved


class SheetLanded(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Sheet name as in the workbook, e.g. '2024' or '2024-C2'.")
    kind: Literal["hardware", "c2"] = Field(description="Hardware/licence sales or Synology C2 sales.")
    year: int = Field(description="The year the sheet covers.")
    rows: int = Field(ge=0, description="Data rows below the header, as written to parquet.")
    columns: list[str] = Field(description="Column headers as found in the sheet.")
    parquet_path: str = Field(description="Parquet file holding the sheet, relative to SYNO_DATA_DIR.")

    @field_validator("parquet_path")
    @classmethod
    def _inside_the_data_folder(cls, path: str) -> str:
        return relative_inside(path)


class SnapshotDelta(BaseModel):
    """What changed against the previous accepted snapshot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    is_first: bool = Field(description="True when there is no previous snapshot to compare with.")
    previous_snapshot_id: str | None = Field(
        default=None, description="The snapshot compared with.", pattern=SNAPSHOT_ID_PATTERN
    )
    size_bytes: int | None = Field(default=None, description="File size change in bytes.")
    sheets_added: list[str] = Field(default_factory=list, description="Sheets new in this snapshot.")
    sheets_removed: list[str] = Field(default_factory=list, description="Sheets the previous snapshot had.")
    rows: dict[str, int] = Field(default_factory=dict, description="Row-count change per sheet present in both.")
    columns_added: dict[str, list[str]] = Field(default_factory=dict, description="Sheet -> columns new in it.")
    columns_removed: dict[str, list[str]] = Field(default_factory=dict, description="Sheet -> columns gone from it.")


class WorkbookFacts(BaseModel):
    """The facts about the file that later stages report to people (carried, never re-read from ingestion)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_name: str = Field(description="File name as dropped on the share.")
    size_bytes: int = Field(ge=0, description="File size in bytes.")
    sheet_rows: dict[str, int] = Field(description="Sheet name -> data rows landed.")
    delta: SnapshotDelta = Field(description="Change against the previous accepted snapshot.")


class WorkbookLanded(Event):
    """A workbook passed the contract and its sheets are on disk as parquet."""

    file_name: str = Field(description="File name as dropped on the share.")
    path: str = Field(description="Where ingestion keeps the accepted file, relative to SYNO_DATA_DIR.")

    @field_validator("path")
    @classmethod
    def _inside_the_data_folder(cls, path: str) -> str:
        return relative_inside(path)

    size_bytes: int = Field(ge=0, description="File size in bytes.")
    delta: SnapshotDelta = Field(description="Change against the previous accepted snapshot.")
    sheets: list[SheetLanded] = Field(description="Every contract sheet of the workbook.")
    contract_version: str = Field(description="Version of the workbook contract the file was checked against.")
    mapping_versions: dict[str, str] = Field(description="Mapping-table file name -> sha256 of its content.")


class QualityGateResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Gate name from the quality configuration.")
    severity: Literal["warn", "error"] = Field(description="A breach at 'error' stops the run.")
    passed: bool = Field(description="Whether the gate held.")
    observed: float | None = Field(default=None, description="The measured value.")
    threshold: float | None = Field(default=None, description="The configured limit.")
    detail: str = Field(default="", description="What was measured, in words.")


class UnmappedValue(BaseModel):
    """A value the mapping tables do not know: kept as UNMAPPED in the warehouse, reported so a person maps it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: Literal["country", "currency", "product"] = Field(description="Which mapping lacks the value.")
    value: str = Field(description="The value as cleaned (trimmed; products upper-cased).")
    rows: int = Field(ge=1, description="Lines carrying it.")


class UnconvertibleValue(BaseModel):
    """A cell that could not be read as its column's type (a date or number) and was loaded as null."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(description="Canonical column name, e.g. 'invoice_date'.")
    value: str = Field(description="The cell as text.")
    rows: int = Field(ge=1, description="Lines carrying it.")


class QualityFacts(BaseModel):
    """How clean the snapshot was: dbt tests, quality gates, and the values a person should fix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows_loaded: int = Field(ge=0, description="Cleaned rows loaded into raw.sales_lines for the snapshot.")
    tests_passed: int = Field(ge=0, description="dbt tests (and unit tests) that passed.")
    tests_warned: int = Field(ge=0, description="dbt tests that warned.")
    tests_failed: int = Field(ge=0, description="dbt tests that failed (0 on a published snapshot).")
    quality_gates: list[QualityGateResult] = Field(default_factory=list, description="Quality-gate results.")
    unmapped_values: list[UnmappedValue] = Field(
        default_factory=list, description="The most frequent unmapped values (all of them in ops.unmapped_values)."
    )
    unconvertible_values: list[UnconvertibleValue] = Field(
        default_factory=list, description="The most frequent unconvertible cells (all of them in ops.unmapped_values)."
    )


SCHEMA_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


class MartsReady(Event):
    """The snapshot's marts were built aside, passed dbt tests and quality gates, and were published (or kept aside)."""

    marts_schema: str = Field(
        default="marts",
        pattern=SCHEMA_NAME_PATTERN,
        description=(
            "Schema holding this snapshot's marts, built aside: readers downstream read this snapshot there, never "
            "whatever the published names show at that moment."
        ),
    )
    is_published: bool = Field(
        default=True,
        description="Whether the stable mart names now show this snapshot (False: older than the published one).",
    )
    publication: Publication = Field(
        default="published",
        description="What happened: 'published', 'kept_aside_older' (newest data wins), 'published_forced' or "
        "'rehearsal' (`syno smoke`: built and checked aside, never published).",
    )
    dbt_invocation_id: str = Field(description="dbt's invocation id for the build.")
    models_built: list[str] = Field(description="dbt models built (unique ids).")
    mart_rows: dict[str, int] = Field(description="Row count per mart, e.g. {'marts.svr_rm_quarterly': 40}.")
    workbook: WorkbookFacts = Field(description="The file the snapshot came from, carried from workbook.landed.")
    quality: QualityFacts = Field(description="dbt tests, quality gates, unmapped and unconvertible values.")
    data_freshness: date | None = Field(description="Latest invoice date in the snapshot.")
    latest_complete_quarter: date | None = Field(
        description="First day of the latest quarter whose data is complete (None if there is none yet)."
    )


class CohortForecast(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str = Field(description="'overall' (SVR-RM tiers and total), 'customer' (top SVR-RM customers) or 'c2'.")
    series_count: int = Field(ge=0, description="Series forecast in the cohort.")
    holdout_mape: float | None = Field(description="Mean MAPE on the held-out quarter (None if undefined).")
    holdout_smape: float | None = Field(description="Mean sMAPE on the held-out quarter.")
    baseline_smape: float | None = Field(description="Mean sMAPE of seasonal naive on the same quarter.")
    threshold_smape: float | None = Field(default=None, description="Configured sMAPE limit for the cohort.")
    is_threshold_met: bool = Field(description="False flags the cohort in notifications.")


class TierForecast(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: str = Field(description="SVR-RM tier, e.g. 'T1', or 'TOTAL'.")
    metric: Literal["quantity", "revenue_usd"] = Field(description="What is forecast.")
    point: float = Field(description="Point forecast for the target quarter.")
    lower_80: float | None = Field(default=None, description="Lower bound of the 80% interval.")
    upper_80: float | None = Field(default=None, description="Upper bound of the 80% interval.")
    model: str = Field(description="Model that produced the forecast.")


class ForecastPublished(Event):
    """Next-quarter forecasts were written to the forecast schema."""

    forecast_run_id: str = Field(description="Identity of this forecast run.")
    target_quarter: date | None = Field(description="First day of the quarter forecast.")
    cohorts: list[CohortForecast] = Field(description="Accuracy summary per cohort.")
    tiers: list[TierForecast] = Field(description="SVR-RM tier forecasts (the headline numbers).")
    tables: list[str] = Field(description="Tables written, e.g. ['forecast.svr_rm'].")
    marts_schema: str = Field(
        default="marts",
        pattern=SCHEMA_NAME_PATTERN,
        description="Schema of the snapshot's marts the forecast was trained on (from marts.ready).",
    )
    publication: Publication = Field(
        default="published",
        description="Whether the dashboards show this snapshot (from marts.ready), so the summary can say so.",
    )
    artifact_path: str | None = Field(default=None, description="Artifacts folder relative to SYNO_DATA_DIR.")

    @field_validator("artifact_path")
    @classmethod
    def _artifacts_inside_the_data_folder(cls, path: str | None) -> str | None:
        return relative_inside(path) if path is not None else None

    workbook: WorkbookFacts = Field(description="The file the snapshot came from, carried from marts.ready.")
    quality: QualityFacts = Field(description="The snapshot's quality, carried from marts.ready.")


class DeliveryResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str = Field(description="Dashboard id, notification channel or catalog name (no secrets).")
    is_ok: bool = Field(description="Whether the delivery succeeded.")
    detail: str = Field(default="", description="What happened, in words.")


class ActivationCompleted(Event):
    """People were told: dashboards refreshed, notifications sent, catalog synced."""

    storylines: int = Field(ge=0, description="Storyline rows written to activation.storylines.")
    dashboards: list[DeliveryResult] = Field(description="Dashboards refreshed (id, result).")
    notifications: list[DeliveryResult] = Field(description="Notifications sent (channel, result).")
    lineage: DeliveryResult | None = Field(default=None, description="Lineage sent to the data catalog (result).")


class PipelineFailed(Event):
    """A stage could not finish; nothing downstream of it ran for this run."""

    snapshot_id: str = Field(
        description="sha256 of the workbook file, or 'unknown' when the failed input named no valid snapshot.",
        pattern=FAILED_SNAPSHOT_ID_PATTERN,
    )

    stage: Stage = Field(description="Stage that failed.")
    reason_code: str = Field(description="Machine-readable reason, e.g. 'wrong_schema' or 'dbt_test_failed'.")
    message: str = Field(description="What went wrong and what to fix, in plain words.")
    is_retryable: bool = Field(description="Whether sending the input again could succeed unchanged.")
    input_reference: str = Field(description="The input: a file path or the subject:msg-id that failed.")


def workbook_facts(landed: WorkbookLanded) -> WorkbookFacts:
    """The facts about the file that travel on with the snapshot."""
    return WorkbookFacts(
        file_name=landed.file_name,
        size_bytes=landed.size_bytes,
        sheet_rows={sheet.name: sheet.rows for sheet in landed.sheets},
        delta=landed.delta,
    )
