"""docs/RELIABILITY.md, written by the fault-injection suite from what it observed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
EXPECTED = (
    "the run completes within 90 s of the restart; marts, forecasts and storylines equal a clean run's; one event "
    "per subject; one summary; no stage run left 'running'"
)
_outcomes: list[Outcome] = []


@dataclass(frozen=True)
class Outcome:
    scenario: str
    injected: str
    observed: str
    expected: str = EXPECTED


def record(outcome: Outcome) -> None:
    _outcomes.append(outcome)
    write()


def write() -> None:
    lines = [
        "# Reliability: what the fault-injection suite injected and saw",
        "",
        "Written by `tests/faults` (run `just test -m faults`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each row is a real fault: a SIGKILL of a service process at a named",
        "point (`SYNO_FAULT`, see `shared/common/src/syno_shared/faults.py`), or a server restart, against real NATS",
        "JetStream and PostgreSQL. Poison messages and dead letters are covered by `tests/shared/test_deadletters.py`.",
        "",
        "| scenario | injected | expected | observed |",
        "|---|---|---|---|",
        *(f"| {o.scenario} | {o.injected} | {o.expected} | {o.observed} |" for o in _outcomes),
        "",
    ]
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(lines))
