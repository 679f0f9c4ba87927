"""Ingestion's settings: the common ones plus the share-watching group (SYNO_INGESTION__...)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from syno_shared.service import Service
from syno_shared.settings import Settings


class ShareSettings(BaseModel):
    poll_seconds: float = Field(default=2.0, gt=0, description="How often the share is listed.")
    stable_polls: int = Field(
        default=2, ge=1, description="Polls a file's size and mtime must stay unchanged before it is taken."
    )


class IngestionSettings(Settings):
    ingestion: ShareSettings = Field(default_factory=ShareSettings)


IngestionService = Service[IngestionSettings]
