"""Content hashes: a workbook's snapshot_id and the mapping tables' versions."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """The same content hash as `file_sha256`, of bytes already read (hash what was parsed, not a re-read)."""
    return hashlib.sha256(data).hexdigest()


def mapping_versions(mapping_dir: Path) -> dict[str, str]:
    """Mapping-table file name -> sha256 of its bytes; a changed file is a new version."""
    return {path.name: file_sha256(path) for path in sorted(mapping_dir.glob("*.csv"))}
