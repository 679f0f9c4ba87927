"""What a workbook may cost before it is read, and what reading it may cost (docs/SECURITY.md).

Sized for the largest workbook the contract plans for: about 1M lines, an 80 MB .xlsx whose
sheets inflate to about 720 MB of XML, read in about 25 s with a peak of 0.76 GiB resident and
3.2 GiB of address space (polars and pyarrow reserve 0.5 GiB of it at import). Imported by the
reader's child process, so it needs nothing but pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MiB = 1 << 20
GiB = 1 << 30


class ReaderLimits(BaseModel):
    """What a workbook may cost before it is read, and what reading it may cost (docs/SECURITY.md)."""

    max_file_bytes: int = Field(default=256 * MiB, gt=0, description="Largest file taken from the share.")
    max_zip_entries: int = Field(default=10_000, gt=0, description="Most files inside a workbook's zip.")
    max_uncompressed_bytes: int = Field(
        default=1 * GiB, gt=0, description="Most bytes a workbook's zip may inflate to, all entries together."
    )
    max_compression_ratio: float = Field(
        default=100.0,
        gt=1,
        description="Highest inflated/compressed ratio of an entry of 1 MiB or more (real sheets: 5-20).",
    )
    max_sheets: int = Field(default=100, gt=0, description="Most worksheets in a workbook.")
    max_columns: int = Field(default=512, gt=0, description="Most columns a sales sheet may declare.")
    max_sheet_cells: int = Field(
        default=32 * MiB, gt=0, description="Most cells (rows x columns) a sales sheet may declare."
    )
    reader_memory_bytes: int = Field(
        default=4 * GiB, gt=0, description="Address space of the reader process (RLIMIT_AS)."
    )
    reader_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Wall time after which the reader process is killed."
    )
    reader_crash_attempts: int = Field(
        default=2,
        ge=1,
        description="Crashes of the reader (abort, out of memory, panic, time limit) on one file before it is"
        " quarantined; the first may be the machine's (memory pressure, a busy CPU), the second is the file's.",
    )
