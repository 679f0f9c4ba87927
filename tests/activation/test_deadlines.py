"""What is late, from rows and a clock (syno_activation.deadlines): each deadline, the calendar, and the plan that
opens an occurrence once and resolves it once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from syno_activation.deadlines import (
    DeadLetters,
    DeadlineOptions,
    Facts,
    Heartbeat,
    LandedWorkbook,
    OpenAlert,
    StageRun,
    counted_days,
    evaluate,
    no_workbook,
    not_activated,
    plan,
    stale_heartbeats,
    waiting_dead_letters,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
SNAPSHOT = "a" * 64


def workbook(landed_minutes_ago: float, completed: tuple[str, ...] = (), **runs: StageRun) -> LandedWorkbook:
    landed_at = NOW - timedelta(minutes=landed_minutes_ago)
    return LandedWorkbook(
        snapshot_id=SNAPSHOT,
        run_id="run-1",
        file_name="sell-out *Q4*.xlsx",
        landed_at=landed_at,
        completed={stage: landed_at + timedelta(minutes=1) for stage in completed},
        latest_runs=runs,
    )


def test_a_workbook_not_activated_in_time_names_the_stage_that_never_started_it() -> None:
    [late] = not_activated([workbook(61, ("transform",))], NOW, minutes=60)
    assert (late.deadline, late.occurrence, late.stage, late.snapshot_id) == (
        "workbook_not_activated",
        SNAPSHOT,
        "forecast",
        SNAPSHOT,
    )
    assert late.message.title == "syno: workbook not activated after 61 min, stuck at forecast (not started)"
    assert "forecast has not started on it: is syno-forecast running?" in late.message.body
    assert "sell-out \\*Q4\\*.xlsx" in late.message.body  # the file name stays literal in markdown


def test_a_stage_still_at_work_is_named_with_its_run() -> None:
    running = StageRun("retrying", NOW - timedelta(minutes=30), delivery=3, error="transient: warehouse down")
    [late] = not_activated([workbook(90, transform=running)], NOW, minutes=60)
    assert late.stage == "transform"
    assert late.message.title.endswith("stuck at transform (retrying)")
    assert "- transform: retrying (delivery 3, since 2026-12-02 11:30 UTC): transient: warehouse down" in (
        late.message.body
    )


@pytest.mark.parametrize(
    "candidate",
    [
        workbook(59, ("transform",)),  # within the deadline
        workbook(600, ("transform", "forecast", "activation")),  # activated
        workbook(
            600, ("transform",), forecast=StageRun("failed", NOW)
        ),  # failed for good: pipeline.failed alerted already
    ],
)
def test_what_is_not_late(candidate: LandedWorkbook) -> None:
    assert not_activated([candidate], NOW, minutes=60) == []


def test_a_workbook_overtaken_by_a_newer_activated_one_is_not_late() -> None:
    older = workbook(600)
    done = {stage: NOW for stage in ("transform", "forecast", "activation")}
    newer = LandedWorkbook("b" * 64, "run-2", "newer.xlsx", NOW - timedelta(minutes=300), done)
    assert not_activated([older, newer], NOW, minutes=60) == []


def test_days_are_counted_on_the_calendar_only() -> None:
    friday_noon = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    weekdays = [1, 2, 3, 4, 5]
    assert counted_days(friday_noon, NOW, weekdays=weekdays, holidays=[], zone="UTC") == pytest.approx(3.0)
    assert counted_days(friday_noon, NOW, weekdays=range(1, 8), holidays=[], zone="UTC") == pytest.approx(5.0)
    assert counted_days(friday_noon, NOW, weekdays=weekdays, holidays=[date(2026, 12, 1)], zone="UTC") == pytest.approx(
        2.0
    )
    # In Tokyo (UTC+9) Friday noon UTC is Friday 21:00, Wednesday noon UTC is Wednesday 21:00: still 3 days.
    assert counted_days(friday_noon, NOW, weekdays=weekdays, holidays=[], zone="Asia/Tokyo") == pytest.approx(3.0)


def test_no_workbook_pages_after_the_counted_gap_once_per_last_workbook() -> None:
    last = LandedWorkbook(SNAPSHOT, "run-1", "last.xlsx", datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    business = DeadlineOptions(no_workbook_days=2.5, workbook_weekdays=[1, 2, 3, 4, 5])
    [late] = no_workbook(last, NOW, business)
    assert (late.deadline, late.occurrence) == ("no_workbook", SNAPSHOT)
    assert late.message.title == "syno: no workbook for 3.0 days (deadline 2.5)"
    assert no_workbook(last, NOW, business.model_copy(update={"no_workbook_days": 3.5})) == []
    assert no_workbook(None, NOW, business) == []  # counting starts with the first workbook


def test_a_silent_watcher_is_late_and_its_occurrence_is_its_last_beat() -> None:
    fresh = Heartbeat("ingestion.watcher", "host:1", NOW - timedelta(seconds=30))
    silent = Heartbeat("ingestion.watcher", "host:1", NOW - timedelta(minutes=5))
    assert stale_heartbeats([fresh], NOW, seconds=120) == []
    [late] = stale_heartbeats([silent], NOW, seconds=120)
    assert (late.deadline, late.occurrence) == ("watcher_heartbeat", f"ingestion.watcher@{silent.beat_at.isoformat()}")
    assert late.message.title == "syno: share watcher silent for 5 min"
    # A checker that started a minute ago waits a full deadline before judging: the watcher may be starting too.
    assert stale_heartbeats([silent], NOW, seconds=120, watching_since=NOW - timedelta(minutes=1)) == []
    assert len(stale_heartbeats([silent], NOW, seconds=120, watching_since=NOW - timedelta(minutes=3))) == 1


def test_dead_letters_waiting_past_the_grace_page_by_their_oldest() -> None:
    letters = DeadLetters(2, 7, NOW - timedelta(minutes=90), {"dlq.workbook.landed": 2})
    [late] = waiting_dead_letters(letters, NOW, minutes=60)
    assert (late.deadline, late.occurrence) == ("dead_letters", "7")
    assert "- By subject: workbook.landed: 2" in late.message.body
    assert waiting_dead_letters(letters, NOW, minutes=120) == []
    assert waiting_dead_letters(DeadLetters(0, 8, None), NOW, minutes=0) == []


def test_the_plan_opens_new_occurrences_once_and_resolves_only_what_was_checked() -> None:
    options = DeadlineOptions(not_activated_minutes=60, dead_letter_minutes=60)
    facts = Facts(landed=[workbook(61, ("transform",))], dead_letters=None)  # NATS could not be asked
    verdict = evaluate(facts, NOW, options)
    assert verdict.checked == {"workbook_not_activated", "no_workbook", "watcher_heartbeat"}
    first = plan(verdict, [])
    assert [(late.deadline, late.occurrence) for late in first.to_open] == [("workbook_not_activated", SNAPSHOT)]
    stuck = OpenAlert("workbook_not_activated", SNAPSHOT, first.to_open[0].message.title, SNAPSHOT)
    letters = OpenAlert("dead_letters", "7", "syno: 1 dead letter(s) waiting")
    assert plan(verdict, [stuck, letters]).to_open == ()  # alerted already: not again
    assert plan(verdict, [stuck, letters]).to_resolve == ()  # dead letters unchecked: left open
    activated = Facts(landed=[workbook(61, ("transform", "forecast", "activation"))])
    assert plan(evaluate(activated, NOW, options), [stuck]).to_resolve == (stuck,)
