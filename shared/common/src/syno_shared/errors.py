"""Domain exceptions shared by the services.

Bad data is rejected once (reported on `pipeline.failed`, never retried); transient I/O is
retried with a delay. Each error carries a machine-readable `code` and a human sentence.
"""

from __future__ import annotations


class SynoError(Exception):
    """Base class: `code` is machine-readable, the message says what to fix."""

    code = "syno_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InputRejected(SynoError):
    """The input breaks the contract: retrying cannot help; a person must fix the file or data."""

    code = "input_rejected"


class QualityGateFailed(SynoError):
    """dbt tests or quality gates failed: the marts were not replaced."""

    code = "quality_gate_failed"


class TransientError(SynoError):
    """A dependency (database, bus, HTTP) failed in a way that a retry may fix."""

    code = "transient"
    retryable = True
