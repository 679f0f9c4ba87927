"""Reading a workbook in a child process with memory and time limits (the parent's side).

A fresh interpreter (reader_child.py) inspects the file and splits its sheets to parquet in the
run's work folder; this side starts it with a scrubbed environment (no server addresses or
secrets), waits for it without blocking the event loop, kills it at the time limit or when the run
is cancelled, and turns how it ended into words a person can act on. A crash (abort, out of memory,
panic, time limit) is retried once, since the machine may have been short of memory or busy; the
`reader_crash_attempts`-th crash on the same file is the file's doing and quarantines it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syno_ingestion.limits import ReaderLimits
from syno_ingestion.preflight import human_bytes
from syno_ingestion.validation import ContractSheet, SheetParquet, printable
from syno_shared.errors import InputRejected, SynoError, TransientError
from syno_shared.logging import get_logger

CRASH_CODES = ("reader_out_of_memory", "reader_timed_out", "reader_panicked", "reader_crashed")
"""Ends of the reader that may be the file's doing. 'reader_failed' (it could not start, or stopped without
a signal and without an answer) is the machine's: a TransientError, bounded by the stage protocol."""
_POLL_SECONDS = 0.05
_LOG_TAIL_BYTES = 16 * 1024
_KEPT_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "HOME", "TZ")
# Few threads, few malloc arenas: the address-space limit then means the same on 2 cores and on 64.
_CHILD_VARIABLES = {
    "POLARS_MAX_THREADS": "2",
    "RAYON_NUM_THREADS": "2",
    "MALLOC_ARENA_MAX": "2",
    "OMP_NUM_THREADS": "1",
    "RUST_BACKTRACE": "0",
}
_ALLOCATION_FAILED = re.compile(r"memory allocation of (\d+) bytes failed")


@dataclass(frozen=True)
class ChildEnd:
    """How the reader process ended."""

    exit_code: int
    """As subprocess reports it: negative for the signal that ended it."""
    is_timed_out: bool
    peak_rss_bytes: int
    seconds: float
    log_tail: str


@dataclass(frozen=True)
class WorkbookRead:
    workbook_format: str
    sheets: list[SheetParquet]
    end: ChildEnd


def child_environment(environment: dict[str, str]) -> dict[str, str]:
    """What the reader may see of the service's environment: no server addresses, no credentials."""
    return {**{key: environment[key] for key in _KEPT_VARIABLES if key in environment}, **_CHILD_VARIABLES}


def crash(end: ChildEnd, crashed: dict[str, Any] | None, limits: ReaderLimits) -> tuple[str, str]:
    """(code, message) for a reader that gave no answer, or reported that it broke."""
    allocation = _ALLOCATION_FAILED.search(end.log_tail)
    memory = human_bytes(limits.reader_memory_bytes)
    if end.is_timed_out or end.exit_code in (-signal.SIGALRM, -signal.SIGXCPU):
        return "reader_timed_out", (
            f"reading the workbook took longer than {limits.reader_timeout_seconds:,.0f} s and was stopped; "
            "a sheet far larger than its data (stray cells or formatting far from it) is the usual cause: "
            "delete the empty rows and columns and save again"
        )
    if allocation is not None or (crashed or {}).get("code") == "reader_out_of_memory":
        asked = f" (its last request: {human_bytes(int(allocation[1]))} at once)" if allocation is not None else ""
        return "reader_out_of_memory", (
            f"reading the workbook needed more than the {memory} of memory the reader may use{asked}; a sheet far "
            "larger than its data (a stray cell at XFD1048576, or a sheet bigger than its file says) is the usual "
            "cause: delete the empty rows and columns and save again"
        )
    if end.exit_code == -signal.SIGKILL:
        return "reader_out_of_memory", (
            "the reader was killed by the system while reading the workbook, most likely for want of memory"
        )
    if crashed is not None:
        detail = printable(str(crashed.get("detail", "")), 200)
        word = "broke down" if crashed.get("code") == "reader_panicked" else "failed"
        return str(crashed.get("code", "reader_crashed")), (
            f"the workbook reader {word} on this file, which is damaged or unusual ({detail}); open it in "
            "Excel and save it again as .xlsx"
        )
    if end.exit_code < 0:
        name = signal.Signals(-end.exit_code).name if -end.exit_code in signal.valid_signals() else str(-end.exit_code)
        return "reader_crashed", f"the workbook reader crashed on this file ({name})"
    detail = printable(_last_line(end.log_tail), 200)
    return "reader_failed", f"the workbook reader could not run (exit status {end.exit_code}: {detail})"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def crash_error(code: str, message: str, *, crashes_before: int, limits: ReaderLimits) -> SynoError:
    """The first crashes may be the machine's (TransientError, tried again); the last is the file's."""
    crashes = crashes_before + 1
    if crashes >= limits.reader_crash_attempts:
        times = "once" if crashes == 1 else f"{crashes} times"
        return InputRejected(f"{message} (the reader crashed {times} on this file; it is not tried again)", code=code)
    return TransientError(f"{message}; trying once more in case the machine was short of memory or busy", code=code)


def sheets_from(answer: dict[str, Any], out_dir: Path) -> list[SheetParquet]:
    """The child's sheets, each parquet file checked to be a file the child wrote into `out_dir`."""
    sheets = []
    for sheet in answer["sheets"]:
        name = str(sheet["parquet_path"])
        parquet = out_dir / name
        if Path(name).name != name or not parquet.is_file():
            raise SynoError(f"the reader answered with a parquet path outside its folder: {printable(name)}")
        contract = ContractSheet(str(sheet["sheet"]["name"]), int(sheet["sheet"]["year"]), sheet["sheet"]["kind"])
        sheets.append(
            SheetParquet(
                sheet=contract,
                rows=int(sheet["rows"]),
                columns=[str(column) for column in sheet["columns"]],
                parquet_path=parquet,
                header_row=int(sheet["header_row"]),
                cell_errors=list(sheet["cell_errors"]),
            )
        )
    return sheets


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the child leads its own session: its group goes with it


async def run_child(job_path: Path, log_path: Path, time_limit: float) -> ChildEnd:
    """Start the reader on `job_path` and wait for it; kill it at `time_limit` seconds or on cancellation."""
    started = time.monotonic()
    pid = os.posix_spawn(  # noqa: ASYNC221 (returns once the child exists; waiting is the polled loop below)
        sys.executable,
        # The child's entry point: run as a module in a fresh interpreter, never imported here.
        [sys.executable, "-I", "-m", "syno_ingestion.reader_child", str(job_path)],
        child_environment(dict(os.environ)),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    is_timed_out = False
    try:
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG: never blocks)
            if done:
                break
            if not is_timed_out and time.monotonic() - started >= time_limit:
                _kill(pid)
                is_timed_out = True
            await asyncio.sleep(_POLL_SECONDS)
    except BaseException:  # cancelled (the service is stopping): the reader does not outlive its run
        _kill(pid)
        with contextlib.suppress(ChildProcessError):
            os.wait4(pid, 0)  # noqa: ASYNC222 (after SIGKILL: at once)
        raise
    with log_path.open("rb") as log:
        log.seek(max(0, log_path.stat().st_size - _LOG_TAIL_BYTES))
        tail = log.read().decode("utf-8", "replace")
    return ChildEnd(
        exit_code=os.waitstatus_to_exitcode(status),
        is_timed_out=is_timed_out,
        peak_rss_bytes=usage.ru_maxrss * 1024,
        seconds=time.monotonic() - started,
        log_tail=tail,
    )


async def read_workbook(copy: Path, folder: Path, limits: ReaderLimits, *, crashes_before: int) -> WorkbookRead:
    """The sales sheets of `copy` as parquet files in `folder`/sheets, read in a child process.

    InputRejected: the file breaks the contract or the limits, or crashed the reader for the last
    time. TransientError: the reader crashed, and may be tried again."""
    out_dir = folder / "sheets"
    out_dir.mkdir(exist_ok=True)
    job_path = folder / "job.json"
    job = {"workbook": str(copy), "out_dir": str(out_dir), "limits": limits.model_dump()}
    job_path.write_text(json.dumps(job))
    result_path = folder / "result.json"
    result_path.unlink(missing_ok=True)
    end = await run_child(job_path, folder / "reader.log", limits.reader_timeout_seconds)
    answer: dict[str, Any] = json.loads(result_path.read_text()) if result_path.exists() and end.exit_code == 0 else {}
    if "sheets" in answer:
        return WorkbookRead(str(answer["format"]), sheets_from(answer, out_dir), end)
    if "rejected" in answer:
        raise InputRejected(str(answer["rejected"]["message"]), code=str(answer["rejected"]["code"]))
    if "failed" in answer:
        detail = printable(str(answer["failed"]["detail"]), 300)
        raise TransientError(f"the reader could not write its output ({detail})", code=str(answer["failed"]["code"]))
    code, message = crash(end, answer.get("crashed"), limits)
    get_logger().warning(
        "reader_crashed",
        code=code,
        exit_code=end.exit_code,
        is_timed_out=end.is_timed_out,
        peak_rss_bytes=end.peak_rss_bytes,
        seconds=round(end.seconds, 3),
        crashes_before=crashes_before,
        last_words=printable(end.log_tail[-1000:], 1000),
    )
    if code not in CRASH_CODES:
        raise TransientError(message, code=code)
    raise crash_error(code, message, crashes_before=crashes_before, limits=limits)
