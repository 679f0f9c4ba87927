"""The reader's own process: `python -I -m syno_ingestion.reader_child <job.json>`.

Started fresh by reader.py for every workbook, it limits itself first (address space, no core
file, an alarm that ends it even if its parent is gone), then inspects the file (preflight.py)
and only then imports fastexcel and splits the sales sheets to parquet in the job's folder. It
answers in `result.json`: the sheets, a rejection a person can act on, or what broke. Whatever
happens inside (an abort, running out of memory, a Rust panic) ends this process, never the
service that started it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from syno_ingestion.limits import ReaderLimits
from syno_ingestion.preflight import SUFFIXES, inspect_workbook
from syno_shared.errors import InputRejected

_GRACE_SECONDS = 10  # the parent kills at the time limit; the alarm is for when the parent is gone


def limit_self(limits: ReaderLimits) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)  # never above what this machine already allows
    memory = limits.reader_memory_bytes if hard == resource.RLIM_INFINITY else min(hard, limits.reader_memory_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no dump of a hostile file's memory on disk
    signal.alarm(math.ceil(limits.reader_timeout_seconds) + _GRACE_SECONDS)  # default action: terminate


def read(workbook: Path, out_dir: Path, limits: ReaderLimits) -> dict[str, Any]:
    workbook_format = inspect_workbook(workbook, limits)
    suffix = SUFFIXES[workbook_format]
    if workbook.suffix.casefold() not in (suffix, ".xlsm" if workbook_format == "xlsx" else suffix):
        # The reader picks its parser by the name: give it the name of what the file holds.
        named = workbook.with_name(f"workbook{suffix}")
        named.symlink_to(workbook.name)
        workbook = named

    from syno_ingestion.workbook import split_sheets  # fastexcel and polars: only for a file that passed

    sheets = split_sheets(workbook, out_dir)
    return {
        "format": workbook_format,
        "sheets": [{**dataclasses.asdict(sheet), "parquet_path": sheet.parquet_path.name} for sheet in sheets],
    }


def answer(job: dict[str, Any]) -> dict[str, Any]:
    limits = ReaderLimits.model_validate(job["limits"])
    try:
        return read(Path(job["workbook"]), Path(job["out_dir"]), limits)
    except InputRejected as error:
        return {"rejected": {"code": error.code, "message": error.message}}
    except OSError as error:  # writing its output (a full disk): the machine's trouble, not the file's
        return {"failed": {"code": "reader_io_error", "detail": f"{type(error).__name__}: {str(error)[:500]}"}}
    except MemoryError:
        return {"crashed": {"code": "reader_out_of_memory", "detail": "MemoryError"}}
    except BaseException as error:  # a Rust panic arrives as pyo3_runtime.PanicException, a BaseException
        is_panic = type(error).__name__ == "PanicException"
        return {
            "crashed": {
                "code": "reader_panicked" if is_panic else "reader_crashed",
                "detail": f"{type(error).__name__}: {str(error)[:500]}",
            }
        }


def main(argv: list[str]) -> int:
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text())
    limit_self(ReaderLimits.model_validate(job["limits"]))
    result = answer(job)
    result["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    written = job_path.with_name("result.json.part")
    written.write_text(json.dumps(result, ensure_ascii=False))
    written.replace(job_path.with_name("result.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
