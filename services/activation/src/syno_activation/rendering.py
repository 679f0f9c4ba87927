"""Run summaries and failure alerts as a title and a CommonMark body (pure; `delivery` sends them).

A run summary leads with what a sales team acts on: the narrated quarter's top opportunities (numbered,
then a link to the dashboard listing all of them), the region and top-customer narratives and the C2
highlights; then what the data team checks: the workbook, its quality and the forecast's accuracy.

Text that comes from the data (file, sheet and column names, customer names, unmapped values) and every line
built from it (opportunities, narratives, C2 highlights, a failure's message) goes through
`safe_text.markdown_text`: a name like ``*Acme*`` or ``<b>`` stays literal in Slack, Teams and e-mail, and one
like ``=HYPERLINK(...)`` or ``@SUM(A1)`` gets a quote in front, so that a spreadsheet it is pasted into never runs
it. Only text the code writes itself (headings, numbers, links from the settings) is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from syno_activation.accuracy import AccuracyDrop
from syno_activation.safe_text import escape_markdown, markdown_text, neutralise_formula
from syno_activation.summary import Link, RunSummary
from syno_shared.events import CohortForecast, PipelineFailed, QualityFacts, SnapshotDelta, WorkbookFacts
from syno_shared.logging import redact_text
from syno_shared.quarters import quarter_label

Severity = Literal["info", "success", "warning", "failure"]


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    severity: Severity = "info"


def _megabytes(value: int) -> str:
    return f"{value / 1_000_000:.1f} MB"


def _signed_megabytes(value: int) -> str:
    return ("+" if value >= 0 else "-") + _megabytes(abs(value))


def _links(trace_url: str | None, dashboards: Sequence[Link]) -> str:
    links = ([Link("Trace in Grafana", trace_url)] if trace_url else []) + list(dashboards)
    return " · ".join(f"[{escape_markdown(link.label)}]({link.url})" for link in links)


def _code(text: str) -> str:
    """Text from an event as a CommonMark code span: neutralised, fenced by more backticks than it holds in a row
    (so it cannot close the span early), padded when it starts or ends with a backtick."""
    text = neutralise_formula(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(markdown_text(name) for name in names)


def _sheet_rows(workbook: WorkbookFacts) -> str:
    delta = workbook.delta
    parts = []
    for sheet, rows in sorted(workbook.sheet_rows.items()):
        change = ""
        if sheet in delta.sheets_added:
            change = " (new)"
        elif sheet in delta.rows:
            change = f" ({delta.rows[sheet]:+,d})"
        parts.append(f"{markdown_text(sheet)} {rows:,d}{change}")
    return ", ".join(parts)


def _snapshot_changes(delta: SnapshotDelta) -> str:
    if delta.is_first:
        return "First snapshot: nothing to compare with."
    changes = []
    if delta.sheets_added:
        changes.append("sheets added: " + _names(delta.sheets_added))
    if delta.sheets_removed:
        changes.append("sheets removed: " + _names(delta.sheets_removed))
    for label, columns in (("columns added", delta.columns_added), ("columns removed", delta.columns_removed)):
        per_sheet = [f"{markdown_text(sheet)}: {_names(names)}" for sheet, names in sorted(columns.items())]
        if per_sheet:
            changes.append(f"{label}: " + "; ".join(per_sheet))
    if not changes:
        return "Same sheets and columns as the previous snapshot."
    return "Since the previous snapshot: " + "; ".join(changes) + "."


PUBLICATION_WORDS = {
    "published": "Published: the dashboards show this snapshot.",
    "kept_aside_older": (
        "Not published: its data is older than the published snapshot's, so the dashboards keep the newer one "
        "(`syno publish <snapshot>` rolls back to this one)."
    ),
    "published_forced": "Published on request (a forced replay): the dashboards show it although newer data exists.",
    "rehearsal": "A rehearsal (`syno smoke`): built, checked and forecast aside; never published, nothing sent.",
}


def _workbook_lines(summary: RunSummary) -> list[str]:
    workbook = summary.workbook
    size = _megabytes(workbook.size_bytes)
    if workbook.delta.size_bytes is not None:
        size += f" ({_signed_megabytes(workbook.delta.size_bytes)})"
    return [
        f"**Workbook**: {markdown_text(workbook.file_name)}, {size}, {summary.quality.rows_loaded:,d} rows loaded.",
        f"Rows per sheet: {_sheet_rows(workbook)}.",
        _snapshot_changes(workbook.delta),
        f"Snapshot `{summary.snapshot_id[:12]}`, run `{summary.run_id}`. {PUBLICATION_WORDS[summary.publication]}",
    ]


def _quality_line(quality: QualityFacts) -> str:
    line = (
        f"**Quality**: dbt tests {quality.tests_passed} passed, {quality.tests_warned} warned, "
        f"{quality.tests_failed} failed"
    )
    failed = [gate.name for gate in quality.quality_gates if not gate.passed and gate.severity == "error"]
    warned = [gate.name for gate in quality.quality_gates if not gate.passed and gate.severity == "warn"]
    if failed:
        line += "; gates failed: " + _names(failed)
    if warned:
        line += "; gates warned: " + _names(warned)
    if not failed and not warned:
        line += "; all quality gates passed"
    return line + "."


def _rows(count: int) -> str:
    return f"{count:,d} row{'' if count == 1 else 's'}"


def _values_lines(heading: str, items: Sequence[str], total: int) -> list[str]:
    if not items:
        return []
    more = [f"- and {total - len(items)} more"] if total > len(items) else []
    return ["", f"**{heading}**:", *items, *more]


def _quality_lines(summary: RunSummary) -> list[str]:
    quality = summary.quality
    unmapped = [
        f'- {value.field} "{markdown_text(value.value)}": {_rows(value.rows)}' for value in summary.top_unmapped
    ]
    unconvertible = [
        f'- {markdown_text(value.column)} "{markdown_text(value.value)}": {_rows(value.rows)}'
        for value in summary.top_unconvertible
    ]
    return [
        "",
        _quality_line(quality),
        *_values_lines("Unmapped values (add them to the mapping tables)", unmapped, len(quality.unmapped_values)),
        *_values_lines("Unconvertible cells (loaded as empty)", unconvertible, len(quality.unconvertible_values)),
    ]


def _cohort_line(cohort: CohortForecast) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}%"

    line = (
        f"- {markdown_text(cohort.cohort)}: {cohort.series_count} series, sMAPE {pct(cohort.holdout_smape)} "
        f"(seasonal naive {pct(cohort.baseline_smape)})"
    )
    if cohort.is_threshold_met:
        return line
    return line + f" **FLAGGED**: above the {pct(cohort.threshold_smape)} limit"


def _accuracy_line(drop: AccuracyDrop) -> str:
    previous = f" (forecast for {quarter_label(drop.previous_target_quarter)})" if drop.previous_target_quarter else ""
    return (
        f"- {markdown_text(drop.cohort)}: accuracy got worse, sMAPE {drop.smape:.1f}% against "
        f"{drop.previous_smape:.1f}% in the previous published run{previous}, more than the {drop.margin:.1f}-point "
        "margin"
    )


def _opportunity_lines(summary: RunSummary) -> list[str]:
    """The numbered top opportunities and where to find them all, then a blank line (nothing without any)."""
    if not summary.opportunities:
        return []
    quarter = quarter_label(summary.narrated_quarter) if summary.narrated_quarter else None
    of_quarter = f" of {quarter}" if quarter else ""
    everything = f"All {summary.opportunity_count} opportunities{of_quarter}, with their accounts"
    link = summary.opportunities_link
    return [
        f"**Top opportunities ({quarter})**:" if quarter else "**Top opportunities**:",
        *[f"{number}. {markdown_text(line)}" for number, line in enumerate(summary.opportunities, start=1)],
        f"{everything}: [{escape_markdown(link.label)}]({link.url})"
        if link
        else f"{everything}, are in activation.storylines.",
        "",
    ]


def summary_message(summary: RunSummary) -> Message:
    """Title and markdown body of a run summary."""
    flagged = [cohort.cohort for cohort in summary.cohorts if not cohort.is_threshold_met]
    target = quarter_label(summary.target_quarter) if summary.target_quarter else "the next quarter"
    title = f"syno: forecasts for {target} from {neutralise_formula(summary.workbook.file_name)}"
    if flagged:
        title += f" ({len(flagged)} cohort{'s' if len(flagged) > 1 else ''} flagged)"

    narrated = f" ({quarter_label(summary.narrated_quarter)})" if summary.narrated_quarter else ""
    lines = _opportunity_lines(summary)
    sections = (
        (f"Regions{narrated}", summary.region_narratives),
        (f"Top customers{narrated}", summary.customer_narratives),
        ("C2 highlights", summary.c2_highlights),
    )
    for heading, items in sections:
        if items:
            lines += [f"**{heading}**:", *[f"- {markdown_text(item)}" for item in items], ""]
    lines += _workbook_lines(summary) + _quality_lines(summary)
    if summary.cohorts or summary.headlines:
        lines += ["", f"**Forecast ({target})**:"]
        lines += [f"- {markdown_text(headline)}" for headline in summary.headlines]
        lines += [_cohort_line(cohort) for cohort in summary.cohorts]
        lines += [_accuracy_line(drop) for drop in summary.accuracy_drops]
    links = _links(summary.trace_url, summary.dashboards)
    if links:
        lines += ["", links]
    return Message(title, "\n".join(lines), "warning" if flagged or summary.accuracy_drops else "success")


def alert_message(failure: PipelineFailed, *, trace_url: str | None = None) -> Message:
    """Title and markdown body of a failure alert."""
    title = f"syno: {failure.stage} failed ({failure.reason_code})"
    lines = [
        markdown_text(redact_text(failure.message)),
        "",
        f"- Stage: {failure.stage}",
        f"- Reason: {_code(failure.reason_code)}",
        f"- Retryable: {'yes' if failure.is_retryable else 'no'}",
        f"- Input: {_code(failure.input_reference)}",
        f"- Snapshot `{failure.snapshot_id[:12]}`, run `{failure.run_id}`",
    ]
    if trace_url:
        lines += ["", _links(trace_url, ())]
    return Message(title, "\n".join(lines), "failure")
