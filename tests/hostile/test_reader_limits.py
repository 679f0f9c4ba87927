"""The reader's process limits, the backstop for what the zip's own records hide: a sheet bigger than its
zip declares passes every check, and only the memory and time limits of its process stop it."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syno_ingestion import reader
from syno_ingestion.limits import ReaderLimits
from syno_ingestion.preflight import inspect_workbook
from syno_shared.errors import InputRejected, TransientError

from .corpus import far_cell, lying_zip_bomb, unique_good

pytestmark = pytest.mark.integration

GiB = 1 << 30


@pytest.fixture(scope="module")
def liar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """700 MiB of sheet XML in 1.7 MB, whose headers claim 17 MB."""
    return lying_zip_bomb(tmp_path_factory.mktemp("liar") / "liar.xlsx", 700 * 1024 * 1024)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "run"
    folder.mkdir()
    yield folder


def taken(source: Path, folder: Path) -> Path:
    copy = folder / f"taken-{source.name}"
    shutil.copyfile(source, copy)
    return copy


def read(copy: Path, limits: ReaderLimits, crashes_before: int = 0) -> reader.WorkbookRead:
    return asyncio.run(reader.read_workbook(copy, copy.parent, limits, crashes_before=crashes_before))


def test_the_liar_passes_the_zip_checks(liar: Path) -> None:
    assert inspect_workbook(liar, ReaderLimits()) == "xlsx"


def test_a_sheet_bigger_than_its_zip_declares_runs_out_of_the_readers_memory_not_the_services(
    liar: Path, work: Path
) -> None:
    with pytest.raises(TransientError) as caught:
        read(taken(liar, work), ReaderLimits(reader_memory_bytes=800 * 1024 * 1024))
    assert caught.value.code == "reader_out_of_memory"
    assert "more than the 800.0 MiB of memory the reader may use" in caught.value.message
    assert "trying once more" in caught.value.message
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 < GiB


def test_a_read_past_the_time_limit_is_killed(liar: Path, work: Path) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        read(taken(liar, work), ReaderLimits(reader_timeout_seconds=2))
    assert caught.value.code == "reader_timed_out" and "longer than 2 s" in caught.value.message
    assert time.monotonic() - started < 10


def test_an_abort_in_the_reader_is_retried_once_then_the_file_is_rejected(tmp_path: Path, work: Path) -> None:
    """The 512 GiB request without a <dimension> to warn of it: calamine aborts (SIGABRT), in its own process.
    The first crash may be the machine's; the second on the same file is the file's."""
    copy = taken(far_cell(tmp_path / "far.xlsx", is_declared=False), work)
    with pytest.raises(TransientError) as first:
        read(copy, ReaderLimits())
    assert first.value.code == "reader_out_of_memory" and "512.0 GiB at once" in first.value.message
    with pytest.raises(InputRejected) as second:
        read(copy, ReaderLimits(), crashes_before=1)
    assert second.value.code == "reader_out_of_memory"
    assert "crashed 2 times on this file; it is not tried again" in second.value.message


def test_a_cancelled_read_takes_its_reader_process_with_it(liar: Path, work: Path) -> None:
    copy = taken(liar, work)

    async def cancel_midway() -> list[int]:
        task = asyncio.create_task(reader.read_workbook(copy, work, ReaderLimits(), crashes_before=0))
        readers: list[int] = []
        for _ in range(100):
            await asyncio.sleep(0.05)
            readers = readers_of(work)
            if readers:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return readers

    readers = asyncio.run(cancel_midway())
    assert readers, "the reader process was never seen"
    assert all(not Path(f"/proc/{pid}").exists() for pid in readers)


def readers_of(folder: Path) -> list[int]:
    """Reader processes working on `folder`'s job (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(folder / "job.json").encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def test_the_reader_sees_no_server_address_and_no_credential_and_still_reads(tmp_path: Path, work: Path) -> None:
    environment = {"SYNO_PG_DSN": "postgresql://u:secret@db/x", "SYNO_NATS_URL": "nats://u:secret@bus", "PATH": "/bin"}
    assert reader.child_environment(environment) == {
        "PATH": "/bin",
        "POLARS_MAX_THREADS": "2",
        "RAYON_NUM_THREADS": "2",
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
        "RUST_BACKTRACE": "0",
    }
    good = read(taken(unique_good(tmp_path / "good.xlsx", 1), work), ReaderLimits())
    assert [(sheet.sheet.name, sheet.rows) for sheet in good.sheets] == [("2024", 1)]
