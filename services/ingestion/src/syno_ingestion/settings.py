"""Ingestion's settings: the common ones plus its own group (SYNO_INGESTION__...): share polling
and the reader limits (limits.py), e.g. SYNO_INGESTION__MAX_FILE_BYTES."""

from __future__ import annotations

from pydantic import Field

from syno_ingestion.limits import ReaderLimits
from syno_shared.service import Service
from syno_shared.settings import Settings


class IngestionOptions(ReaderLimits):
    poll_seconds: float = Field(default=2.0, gt=0, description="How often the share is listed.")
    stable_polls: int = Field(
        default=2, ge=1, description="Polls a file's size and mtime must stay unchanged before it is taken."
    )


class IngestionSettings(Settings):
    ingestion: IngestionOptions = Field(default_factory=IngestionOptions)


IngestionService = Service[IngestionSettings]
