"""No workbook can take the pipeline down: every hostile file is quarantined with a reason a person
understands, or processed correctly, within 60 s, with every reader process under 1 GiB; the watcher
stays alive with a fresh heartbeat, nothing is written outside the data folder, and the next good
workbook goes through.
"""

from __future__ import annotations

import itertools
import time

import pytest

from .corpus import CORPUS, Hostile, unique_good
from .share_watcher import Watcher, listing, peak_child_rss_bytes

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
    entry = watcher.place(hostile, watcher.root / "staging")
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

    after = await watcher.outcome(watcher.place(_good_drop(hostile), watcher.root / "staging"))
    assert after.outcome == "accepted", after
    assert watcher.is_watching
    assert time.time() - watcher.heartbeat[0] < 5


def _good_drop(hostile: Hostile) -> Hostile:
    """The next good workbook, dropped as a person would, named after the file it follows."""
    return Hostile(f"good_after_{hostile.key}", lambda path: unique_good(path, next(_serial)), "landed")
