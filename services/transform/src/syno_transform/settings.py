"""The transform's settings: the common ones plus the transform group (SYNO_TRANSFORM__...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from syno_shared.settings import Settings


class TransformOptions(BaseModel):
    dbt_project_dir: Path | None = Field(default=None, description="dbt project; default: <repo>/dbt.")
    dbt_target_path: Path | None = Field(
        default=None, description="Where dbt writes artifacts; default: SYNO_DATA_DIR/processed/dbt."
    )
    top_customers: int = Field(default=20, ge=1, description="Customers ranked in the top-N marts.")
    raw_retention_snapshots: int = Field(
        default=12, ge=1, description="Snapshots kept in raw.sales_lines for audit; older ones are pruned."
    )
    published_snapshots_kept: int = Field(
        default=3,
        ge=1,
        description=(
            "Builds kept besides the published one: the last N published (for `syno publish` rollbacks) and the last"
            " N that passed their checks (a snapshot kept aside is still read downstream); older ones are dropped."
        ),
    )

    reforecast_cron: str | None = Field(
        default=None,
        description="Forecast the published snapshot again on this cron (e.g. '0 6 * * 1': Mondays 06:00); "
        "null = only when a workbook arrives (syno_transform.reforecast).",
    )
    schedule_timezone: str = Field(default="UTC", description="Time zone of reforecast_cron.")

    def dbt_variables(self) -> dict[str, Any]:
        """The dbt vars every parse and build of the project gets (the same ones, so parses stay partial)."""
        return {"top_customers": self.top_customers}


class TransformSettings(Settings):
    transform: TransformOptions = Field(default_factory=TransformOptions)
