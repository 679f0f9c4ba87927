"""Ingestion's settings: the common ones plus its own group (SYNO_INGESTION__...): share polling
and the reader limits (limits.py), e.g. SYNO_INGESTION__MAX_FILE_BYTES."""

from __future__ import annotations

from pydantic import Field

from syno_ingestion.limits import ReaderLimits
from syno_ingestion.share import WatchMode
from syno_shared.service import Service
from syno_shared.settings import Settings


class IngestionOptions(ReaderLimits):
    watch_mode: WatchMode = Field(
        default="auto",
        description=(
            "How a fully copied file is recognised: 'events' (filesystem events and a quiet window, local disks),"
            " 'polling' (unchanged across listings, SMB/NFS mounts) or 'auto' (polling on network and FUSE"
            " filesystems, events elsewhere)."
        ),
    )
    poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the share is listed (in events mode: at the longest)."
    )
    stable_polls: int = Field(
        default=2, ge=1, description="Polling: listings a file's size and mtime must stay unchanged before it is taken."
    )
    quiet_seconds: float = Field(
        default=0.3, gt=0, description="Events: seconds without a write event to a file before it is taken."
    )


class IngestionSettings(Settings):
    ingestion: IngestionOptions = Field(default_factory=IngestionOptions)


IngestionService = Service[IngestionSettings]
