"""Deadlines that page a person: what is late, decided from rows and a clock. No I/O here (see deadline_watch).

Four deadlines, each switched off by setting its limit to null:

- `workbook_not_activated`: a workbook landed (ingestion's completion) and was not activated within
  `not_activated_minutes`. The alert names the stuck stage: the first of transform, forecast, activation with no
  completion, and what its latest run says (running, retrying, or not started: is that service running?). A
  stage whose latest run failed for good is left out: its pipeline.failed already alerted a person. A workbook
  overtaken by a newer one that was activated is not late: people see newer data.
- `no_workbook`: the last workbook landed more than `no_workbook_days` ago, counting only the calendar's
  `workbook_weekdays` (ISO, 1 = Monday) in `timezone`, holidays left out: with Monday to Friday and 3 days, a
  workbook from Friday noon is late on Wednesday noon. Counting starts with the first workbook.
- `watcher_heartbeat`: the share watcher (ops.heartbeats) last listed the share more than
  `heartbeat_stale_seconds` ago: ingestion is down or stuck. Nothing is said before its first heartbeat.
- `dead_letters`: dead letters have been waiting in SYNO_DLQ for more than `dead_letter_minutes` (the oldest
  one's age); each of them was alerted once when it died, this is the reminder that nobody redrove or dropped it.

Each late thing is an occurrence with a key that names it (the snapshot, the last workbook, the last beat, the
oldest dead letter's sequence), so it is alerted once, and resolved once when it clears.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from syno_activation.rendering import Message
from syno_activation.safe_text import markdown_text

Deadline = Literal["workbook_not_activated", "no_workbook", "watcher_heartbeat", "dead_letters"]
DEADLINES: Final[tuple[Deadline, ...]] = ("workbook_not_activated", "no_workbook", "watcher_heartbeat", "dead_letters")
DOWNSTREAM: Final = ("transform", "forecast", "activation")
SERVICE_HINT: Final = {
    "transform": "syno-transform",
    "forecast": "syno-forecast",
    "activation": "syno-activation",
}


class DeadlineOptions(BaseModel):
    """SYNO_ACTIVATION__DEADLINES__...: what counts as late, and how often it is checked."""

    check_seconds: float = Field(
        default=60.0, ge=0, description="How often the deadlines are checked; 0 = only on the cron below."
    )
    cron: str | None = Field(
        default=None,
        description="Also a freshness check on a schedule (cron, e.g. '0 8 * * 1-5'): the deadlines are checked "
        "and a short freshness note is sent (last workbook, open deadline alerts).",
    )
    timezone: str = Field(default="UTC", description="Time zone of the cron and of the workbook calendar.")
    not_activated_minutes: float | None = Field(
        default=60.0, gt=0, description="A landed workbook not activated after this long pages; null = off."
    )
    lookback_hours: float = Field(
        default=48.0, gt=0, description="Landed workbooks older than this are not checked (older history stays quiet)."
    )
    no_workbook_days: float | None = Field(
        default=8.0, gt=0, description="Days counted on the calendar without a workbook before it pages; null = off."
    )
    workbook_weekdays: list[int] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7],
        description="ISO weekdays (1 = Monday) counted towards no_workbook_days, e.g. [1, 2, 3, 4, 5].",
    )
    holidays: list[date] = Field(default_factory=list, description="Dates not counted towards no_workbook_days.")
    heartbeat_stale_seconds: float | None = Field(
        default=120.0, gt=0, description="A watcher heartbeat older than this pages; null = off."
    )
    dead_letter_minutes: float | None = Field(
        default=60.0, ge=0, description="Dead letters waiting longer than this page (a reminder); null = off."
    )
    send_resolved: bool = Field(default=True, description="Send a 'resolved' note when a late thing clears.")

    @field_validator("workbook_weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if not value or any(day not in range(1, 8) for day in value):
            raise ValueError("workbook_weekdays: ISO weekdays 1 (Monday) to 7 (Sunday), at least one")
        return sorted(set(value))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone
        return value


@dataclass(frozen=True, slots=True)
class StageRun:
    """A stage's latest run of a snapshot (ops.stage_runs)."""

    status: str
    started_at: datetime
    delivery: int = 1
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LandedWorkbook:
    """A workbook ingestion accepted, with the stages that completed it and their latest runs."""

    snapshot_id: str
    run_id: str
    file_name: str
    landed_at: datetime
    completed: Mapping[str, datetime] = field(default_factory=dict)
    latest_runs: Mapping[str, StageRun] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    component: str
    instance: str
    beat_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """What the dead-letter stream's state says (no message is read)."""

    count: int
    first_sequence: int
    first_at: datetime | None
    by_subject: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the deadlines are decided from. `dead_letters` None: the stream could not be read now."""

    landed: Sequence[LandedWorkbook] = ()
    last_landed: LandedWorkbook | None = None
    heartbeats: Sequence[Heartbeat] = ()
    watching_since: datetime | None = None
    """When this checker started: a heartbeat is judged only after a full deadline of watching, so a deployment
    restarted after a long stop does not page before the watcher had a chance to beat again."""
    dead_letters: DeadLetters | None = None


@dataclass(frozen=True, slots=True)
class Late:
    """One occurrence of something late, keyed by (deadline, occurrence)."""

    deadline: Deadline
    occurrence: str
    message: Message
    snapshot_id: str | None = None
    stage: str | None = None


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An occurrence already alerted and not yet resolved (ops.deadline_alerts)."""

    deadline: Deadline
    occurrence: str
    title: str
    snapshot_id: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What is late now, and which deadlines were checked (only those can resolve their open alerts)."""

    late: tuple[Late, ...]
    checked: frozenset[Deadline]


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _age(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _stage_line(stage: str, workbook: LandedWorkbook) -> str:
    if stage in workbook.completed:
        return f"- {stage}: completed {_when(workbook.completed[stage])}"
    run = workbook.latest_runs.get(stage)
    if run is None:
        return f"- {stage}: not started"
    error = f": {markdown_text(run.error)}" if run.error else ""
    return f"- {stage}: {run.status} (delivery {run.delivery}, since {_when(run.started_at)}){error}"


def stuck_stage(workbook: LandedWorkbook) -> str | None:
    """The first stage after ingestion that has not completed the workbook (None: activated)."""
    return next((stage for stage in DOWNSTREAM if stage not in workbook.completed), None)


def not_activated(workbooks: Sequence[LandedWorkbook], now: datetime, *, minutes: float) -> list[Late]:
    """Workbooks landed more than `minutes` ago and not activated, each naming its stuck stage."""
    activated = [workbook.landed_at for workbook in workbooks if "activation" in workbook.completed]
    newest_activated = max(activated, default=None)
    late: list[Late] = []
    for workbook in workbooks:
        stage = stuck_stage(workbook)
        waited = now - workbook.landed_at
        if stage is None or waited < timedelta(minutes=minutes):
            continue
        if newest_activated is not None and newest_activated > workbook.landed_at:
            continue  # overtaken: a newer workbook reached people
        run = workbook.latest_runs.get(stage)
        if run is not None and run.status == "failed":
            continue  # failed for good: pipeline.failed alerted a person already
        state = "not started" if run is None else run.status
        hint = (
            f"{stage} has not started on it: is {SERVICE_HINT[stage]} running? (`syno status` shows its consumer)"
            if run is None
            else f"{stage} is {state} (delivery {run.delivery}); `syno runs show {workbook.run_id}` has the details"
        )
        body = "\n".join(
            [
                f"Workbook **{markdown_text(workbook.file_name)}** landed {_when(workbook.landed_at)}, "
                f"{_age(waited)} ago, and has not been activated (deadline: {minutes:g} min).",
                "",
                hint,
                "",
                f"- ingestion: completed {_when(workbook.landed_at)}",
                *(_stage_line(name, workbook) for name in DOWNSTREAM),
                f"- Snapshot `{workbook.snapshot_id[:12]}`, run `{workbook.run_id}`",
            ]
        )
        title = f"syno: workbook not activated after {_age(waited)}, stuck at {stage} ({state})"
        late.append(
            Late(
                "workbook_not_activated",
                workbook.snapshot_id,
                Message(title, body, "warning"),
                snapshot_id=workbook.snapshot_id,
                stage=stage,
            )
        )
    return late


def counted_days(
    start: datetime, end: datetime, *, weekdays: Iterable[int], holidays: Iterable[date], zone: str
) -> float:
    """Days between `start` and `end` that fall on the calendar's weekdays and are not holidays, in `zone`."""
    if end <= start:
        return 0.0
    tz = ZoneInfo(zone)
    counted_weekdays, days_off = set(weekdays), set(holidays)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    total = 0.0
    day = local_start.date()
    while day <= local_end.date():
        if day.isoweekday() in counted_weekdays and day not in days_off:
            day_start = datetime.combine(day, time(), tz)
            day_end = datetime.combine(day + timedelta(days=1), time(), tz)
            overlap = min(local_end, day_end) - max(local_start, day_start)
            total += max(overlap.total_seconds(), 0.0) / 86400
        day += timedelta(days=1)
    return total


def no_workbook(last: LandedWorkbook | None, now: datetime, options: DeadlineOptions) -> list[Late]:
    """The last workbook is older than `no_workbook_days` counted on the calendar (nothing before the first)."""
    if last is None or options.no_workbook_days is None:
        return []
    days = counted_days(
        last.landed_at, now, weekdays=options.workbook_weekdays, holidays=options.holidays, zone=options.timezone
    )
    if days <= options.no_workbook_days:
        return []
    calendar = (
        "every day"
        if len(options.workbook_weekdays) == 7
        else "weekdays " + ",".join(str(day) for day in options.workbook_weekdays) + " (ISO)"
    )
    body = "\n".join(
        [
            f"No workbook has landed for {_age(now - last.landed_at)}: the last one, "
            f"**{markdown_text(last.file_name)}**, landed {_when(last.landed_at)}.",
            "",
            f"- Deadline: {options.no_workbook_days:g} days counted on {calendar}, {options.timezone}"
            + (f", {len(options.holidays)} holidays left out" if options.holidays else ""),
            f"- Counted so far: {days:.1f} days",
            "- Is the distributor's export running, and is the share mounted? (`syno status`)",
        ]
    )
    title = f"syno: no workbook for {days:.1f} days (deadline {options.no_workbook_days:g})"
    return [Late("no_workbook", last.snapshot_id, Message(title, body, "warning"), snapshot_id=last.snapshot_id)]


def stale_heartbeats(
    heartbeats: Sequence[Heartbeat], now: datetime, *, seconds: float, watching_since: datetime | None = None
) -> list[Late]:
    """Watchers whose last heartbeat is older than `seconds` (and than the checker's start, if given, by as much);
    the occurrence is the last beat."""
    if watching_since is not None and now - watching_since <= timedelta(seconds=seconds):
        return []
    late = []
    for beat in heartbeats:
        age = now - beat.beat_at
        if age <= timedelta(seconds=seconds):
            continue
        body = "\n".join(
            [
                f"The share watcher ({markdown_text(beat.component)}) last listed the share {_when(beat.beat_at)}, "
                f"{_age(age)} ago (deadline: {seconds:g} s). No new workbook is taken until it is back.",
                "",
                f"- Last instance: `{beat.instance}`",
                "- Is syno-ingestion running and healthy? (`python -m syno_shared.health ingestion`, `syno status`)",
            ]
        )
        title = f"syno: share watcher silent for {_age(age)}"
        late.append(
            Late("watcher_heartbeat", f"{beat.component}@{beat.beat_at.isoformat()}", Message(title, body, "failure"))
        )
    return late


def waiting_dead_letters(letters: DeadLetters, now: datetime, *, minutes: float) -> list[Late]:
    """Dead letters whose oldest has waited longer than `minutes`; the occurrence is that oldest's sequence."""
    if letters.count == 0 or letters.first_at is None or now - letters.first_at < timedelta(minutes=minutes):
        return []
    subjects = ", ".join(
        f"{subject.removeprefix('dlq.')}: {count}" for subject, count in sorted(letters.by_subject.items())
    )
    body = "\n".join(
        [
            f"{letters.count} dead letter(s) waiting in SYNO_DLQ, the oldest (#{letters.first_sequence}) since "
            f"{_when(letters.first_at)}, {_age(now - letters.first_at)} ago.",
            "",
            f"- By subject: {subjects or 'unknown'}",
            "- `syno dlq list`, then `syno dlq redrive ID` once fixed, or `syno dlq drop ID`",
        ]
    )
    title = f"syno: {letters.count} dead letter(s) waiting for {_age(now - letters.first_at)}"
    return [Late("dead_letters", str(letters.first_sequence), Message(title, body, "warning"))]


def evaluate(facts: Facts, now: datetime, options: DeadlineOptions) -> Verdict:
    """Every deadline that is switched on and whose facts are known, checked at `now`."""
    late: list[Late] = []
    checked: set[Deadline] = set()
    if options.not_activated_minutes is not None:
        late += not_activated(facts.landed, now, minutes=options.not_activated_minutes)
        checked.add("workbook_not_activated")
    if options.no_workbook_days is not None:
        late += no_workbook(facts.last_landed, now, options)
        checked.add("no_workbook")
    if options.heartbeat_stale_seconds is not None:
        late += stale_heartbeats(
            facts.heartbeats, now, seconds=options.heartbeat_stale_seconds, watching_since=facts.watching_since
        )
        checked.add("watcher_heartbeat")
    if options.dead_letter_minutes is not None and facts.dead_letters is not None:
        late += waiting_dead_letters(facts.dead_letters, now, minutes=options.dead_letter_minutes)
        checked.add("dead_letters")
    return Verdict(tuple(late), frozenset(checked))


@dataclass(frozen=True, slots=True)
class Plan:
    """What one check does: alerts to open (sent once) and open alerts to resolve."""

    to_open: tuple[Late, ...]
    to_resolve: tuple[OpenAlert, ...]


def plan(verdict: Verdict, open_alerts: Sequence[OpenAlert]) -> Plan:
    """Late occurrences not alerted yet are opened; open ones of a checked deadline that are no longer late are
    resolved (an unchecked deadline's, e.g. while NATS cannot be asked, stay open)."""
    alerted = {(alert.deadline, alert.occurrence) for alert in open_alerts}
    late = {(item.deadline, item.occurrence) for item in verdict.late}
    return Plan(
        to_open=tuple(item for item in verdict.late if (item.deadline, item.occurrence) not in alerted),
        to_resolve=tuple(
            alert
            for alert in open_alerts
            if alert.deadline in verdict.checked and (alert.deadline, alert.occurrence) not in late
        ),
    )


def resolved_message(alert: OpenAlert, now: datetime) -> Message:
    return Message(
        f"syno: resolved: {alert.title.removeprefix('syno: ')}",
        f"Cleared at {_when(now)}; no action needed.",
        "success",
    )


def freshness_message(facts: Facts, open_alerts: Sequence[OpenAlert], now: datetime) -> Message:
    """The scheduled freshness note: the last workbook and what is late, in a few lines."""
    last = facts.last_landed
    lines = [
        f"- Last workbook: **{markdown_text(last.file_name)}**, landed {_when(last.landed_at)} "
        f"({_age(now - last.landed_at)} ago), activated: {'yes' if 'activation' in last.completed else 'no'}"
        if last is not None
        else "- No workbook has landed yet",
        f"- Dead letters waiting: {facts.dead_letters.count if facts.dead_letters is not None else 'unknown'}",
        f"- Open deadline alerts: {len(open_alerts)}",
        *(f"  - {markdown_text(alert.title.removeprefix('syno: '))}" for alert in open_alerts),
    ]
    title = f"syno: freshness check {now:%Y-%m-%d}"
    return Message(title, "\n".join(lines), "warning" if open_alerts else "success")
