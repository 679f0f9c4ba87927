"""No workbook can take the pipeline down: every hostile file is quarantined with a reason a person
understands, or processed correctly, within 60 s, with every reader process under 1 GiB; the watcher
stays alive with a fresh heartbeat, nothing is written outside the data folder, and the next good
workbook goes through.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time

import pytest

from syno_shared.fingerprint import file_sha256

from .corpus import CORPUS, Hostile, unique_good
from .share_watcher import Watcher, listing, peak_child_rss_bytes
from .workbooks import sales, write_xlsx

pytestmark = pytest.mark.integration

GiB = 1 << 30
_serial = itertools.count()


def test_the_corpus_is_at_least_25_distinct_hostile_files() -> None:
    assert len(CORPUS) >= 25
    assert len({hostile.key for hostile in CORPUS}) == len(CORPUS)
    assert len({hostile.name for hostile in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("hostile", CORPUS, ids=[hostile.key for hostile in CORPUS])
async def test_a_hostile_file_is_quarantined_or_processed_and_the_share_keeps_working(
    watcher: Watcher, hostile: Hostile
) -> None:
    entry = await asyncio.to_thread(watcher.place, hostile, watcher.root / "staging")  # the loop is the watcher's
    outside_before = listing(watcher.root, skip=(watcher.data_dir, watcher.root / "staging"))

    outcome = await watcher.outcome(entry)

    assert outcome.seconds < 60, f"took {outcome.seconds:.1f} s"
    assert outcome.max_heartbeat_age < 5, f"heartbeat went {outcome.max_heartbeat_age:.1f} s without a beat"
    assert peak_child_rss_bytes() < GiB, f"a reader peaked at {peak_child_rss_bytes() / GiB:.2f} GiB"
    if hostile.expected == "quarantined":
        assert (outcome.outcome, outcome.reason_code) in {("quarantined", code) for code in hostile.codes}, outcome
        assert outcome.reason_file is not None and outcome.reason_file["code"] == outcome.reason_code
        message = outcome.reason_file["message"]
        assert message == outcome.message and len(message) > 30  # a sentence, not a bare code
        assert "Traceback" not in message and "\n" not in message and "\u202e" not in message
    else:
        assert (outcome.outcome, outcome.reason_code) == ("accepted", None), outcome
        assert outcome.sheets, "an accepted workbook lands its sales sheets"
        if hostile.check is not None:
            hostile.check(outcome.sheets)
    assert listing(watcher.root, skip=(watcher.data_dir, watcher.root / "staging")) == outside_before
    assert {path.name for path in watcher.data_dir.iterdir()} <= {"raw", "processed", "quarantine", "mapping_table"}

    after = await watcher.outcome(await asyncio.to_thread(watcher.place, _good_drop(hostile), watcher.root / "staging"))
    assert after.outcome == "accepted", after
    assert watcher.is_watching
    assert time.time() - watcher.heartbeat[0] < 5


def _good_drop(hostile: Hostile) -> Hostile:
    """The next good workbook, dropped as a person would, named after the file it follows."""
    return Hostile(f"good_after_{hostile.key}", lambda path: unique_good(path, next(_serial)), "landed")


async def test_a_file_rewritten_while_it_is_read_is_judged_only_in_its_final_form(watcher: Watcher) -> None:
    """A verdict on bytes that are no longer on the share is void: nothing is recorded for them, and the
    file is taken again once it stops changing."""
    staging = watcher.root / "staging"
    first = await asyncio.to_thread(write_xlsx, staging / "first.xlsx", {"2024": sales(20_000)})  # a second to read
    serial = next(_serial)
    final = unique_good(staging / "final.xlsx", serial)
    entry = watcher.raw_dir / "rewritten while read.xlsx"
    shutil.copyfile(first, staging / "partial")
    (staging / "partial").rename(entry)
    incoming = watcher.data_dir / "processed" / "ingestion" / ".incoming"
    for _ in range(300):  # until the reader has started on the first version
        if any(incoming.glob("*/job.json")):
            break
        await asyncio.sleep(0.02)
    entry.write_bytes(final.read_bytes())

    outcome = await watcher.outcome(entry)

    assert outcome.outcome == "accepted"
    assert outcome.sheets["2024"]["PI"].to_list() == [f"GOOD{serial}"]
    assert watcher.service is not None
    pool = watcher.service.pool
    first_id = file_sha256(first)
    assert await pool.fetch("select outcome from ops.ingestion_files where snapshot_id = $1", first_id) == []
    runs = await pool.fetch(
        "select status, error_code from ops.stage_runs where snapshot_id = $1 and stage = 'ingestion'", first_id
    )
    assert [tuple(run) for run in runs] == [("retrying", "file_changed")]
