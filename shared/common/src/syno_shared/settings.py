"""Settings from the environment (prefix SYNO_) and an optional .env file.

Built inside each app factory and passed down; never a module-level global. Nested groups
use a double underscore: SYNO_INGESTION__STABLE_POLLS=3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestionSettings(BaseModel):
    poll_seconds: float = Field(default=2.0, gt=0, description="How often the share is listed.")
    stable_polls: int = Field(
        default=2, ge=1, description="Polls a file's size and mtime must stay unchanged before it is taken."
    )


class TransformSettings(BaseModel):
    dbt_project_dir: Path | None = Field(default=None, description="dbt project; default: <repo>/dbt.")
    dbt_target_path: Path | None = Field(
        default=None, description="Where dbt writes artifacts; default: SYNO_DATA_DIR/processed/dbt."
    )
    top_customers: int = Field(default=20, ge=1, description="Customers ranked in the top-N marts.")
    raw_retention_snapshots: int = Field(
        default=12, ge=1, description="Snapshots kept in raw.sales_lines for audit; older ones are pruned."
    )


ForecastCohort = Literal["overall", "customer", "c2", "region"]


def _default_smape_thresholds() -> dict[ForecastCohort, float]:
    return {"overall": 25.0, "customer": 50.0, "c2": 50.0, "region": 25.0}


class ForecastSettings(BaseModel):
    top_customers: int = Field(default=20, ge=1, description="Top customers forecast individually.")
    smape_thresholds: dict[ForecastCohort, float] = Field(
        default_factory=_default_smape_thresholds,
        description=(
            "Limit on each cohort's mean holdout sMAPE, in percent (0..200, as the engine computes it), e.g. "
            '{"overall": 25, "customer": 50, "c2": 50}. A cohort above its limit, or with nothing backtested, is '
            "flagged in forecast.published and in notifications. The dict replaces the default as a whole: a "
            "cohort left out has no limit."
        ),
    )
    models: list[str] | None = Field(
        default=None, description="Candidate models (engine names, e.g. ['ets', 'theta']); unset = the engine's set."
    )
    batch_series: int = Field(
        default=25, ge=1, description="Series per work batch fanned out to the forecast replicas."
    )
    processes: int = Field(
        default=2,
        ge=0,
        description="Worker processes per replica for its batches (0 = one thread in the service process).",
    )
    work_timeout_seconds: float = Field(
        default=600.0, gt=0, description="How long a run waits for all its batches before it is retried."
    )

    @field_validator("smape_thresholds")
    @classmethod
    def _thresholds_are_percent(cls, value: dict[ForecastCohort, float]) -> dict[ForecastCohort, float]:
        for cohort, limit in value.items():
            if not 1.0 <= limit <= 200.0:
                raise ValueError(
                    f"sMAPE threshold for {cohort!r} is {limit}: thresholds are percent between 1 and 200 "
                    "(write 25 for 25%, not 0.25)"
                )
        return value


class MetabaseSettings(BaseModel):
    mode: Literal["invalidate", "card_refresh", "n8n", "off"] = Field(
        default="off", description="invalidate (paid editions), card_refresh (open source), n8n webhook, or off."
    )
    url: str = Field(default="http://localhost:3000", description="Metabase base URL.")
    api_key: SecretStr | None = Field(default=None, description="Metabase API key (x-api-key header).")
    username: str | None = Field(default=None, description="For a session login when there is no API key.")
    password: SecretStr | None = Field(default=None, description="Password for the session login.")
    database_id: int | None = Field(default=None, description="Warehouse database id in Metabase.")
    dashboard_ids: list[int] = Field(default_factory=list, description="Dashboards whose cache is invalidated.")
    card_ids: list[int] = Field(default_factory=list, description="Cards re-run with ignore_cache.")
    sentinel_card_id: int | None = Field(default=None, description="A card that shows the snapshot id.")
    n8n_webhook_url: SecretStr | None = Field(default=None, description="n8n webhook for mode n8n.")


class LineageSettings(BaseModel):
    transport: Literal["console", "file", "http", "off"] = Field(default="off", description="OpenLineage transport.")
    file_path: Path | None = Field(default=None, description="JSON-lines file for the file transport.")
    url: str | None = Field(default=None, description="Catalog base URL for the http transport (e.g. Marquez).")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the http transport.")


class ActivationSettings(BaseModel):
    notify_urls: list[SecretStr] = Field(
        default_factory=list, description="apprise URLs (Slack, Teams workflows, mailtos, json)."
    )
    grafana_url: str = Field(default="http://localhost:3000", description="Base URL for trace links.")
    dashboard_links: dict[str, str] = Field(
        default_factory=dict, description="Dashboard name -> URL, listed in every summary."
    )
    metabase: MetabaseSettings = Field(default_factory=MetabaseSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNO_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    nats_url: str | None = Field(default=None, description="NATS server; unset = start an embedded one.")
    pg_dsn: str | None = Field(default=None, description="PostgreSQL DSN; unset = start an embedded one.")
    data_dir: Path = Field(default=Path("data"), description="Holds raw/, processed/, quarantine/.")
    mapping_dir: Path | None = Field(default=None, description="Reference CSVs; default: data_dir/mapping_table.")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector base URL, e.g. http://localhost:4318; unset = no export."
    )
    stream_name: str = Field(default="SYNO", description="The JetStream stream holding all subjects.")
    max_deliver: int = Field(default=5, ge=1, description="Deliveries before a message is given up.")
    log_format: str = Field(default="auto", description="'json', 'console' or 'auto' (console on a TTY).")

    ingestion: IngestionSettings = Field(default_factory=IngestionSettings)
    transform: TransformSettings = Field(default_factory=TransformSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    activation: ActivationSettings = Field(default_factory=ActivationSettings)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.data_dir / "processed"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def mapping_table_dir(self) -> Path:
        return self.mapping_dir if self.mapping_dir is not None else self.data_dir / "mapping_table"
