"""Run summaries and alerts as title and CommonMark body: facts of the snapshot, forecasts, data text escaped."""

from __future__ import annotations

from activation_events import ALERT_BODY, FAILURE, SNAPSHOT, SUMMARY, SUMMARY_BODY, SUMMARY_TITLE

from syno_activation.rendering import Message, alert_message, escape_markdown, summary_message
from syno_activation.summary import RunSummary
from syno_shared.events import QualityFacts, SnapshotDelta, WorkbookFacts


def test_summary_message_lists_volume_health_forecast_flags_and_links() -> None:
    message = summary_message(SUMMARY)
    assert (message.title, message.body, message.severity) == (SUMMARY_TITLE, SUMMARY_BODY, "warning")


def test_alert_message_takes_a_pipeline_failed_event_as_it_is() -> None:
    message = alert_message(FAILURE, trace_url="http://grafana.local/t/1")
    assert (message.title, message.body, message.severity) == (
        "syno: transform failed (dbt_test_failed)",
        ALERT_BODY,
        "failure",
    )


def test_a_first_snapshot_has_nothing_to_compare_and_a_clean_one_no_value_lists() -> None:
    first = WorkbookFacts(
        file_name="sellout.xlsx", size_bytes=1_500_000, sheet_rows={"2024": 900}, delta=SnapshotDelta(is_first=True)
    )
    clean = QualityFacts(rows_loaded=900, tests_passed=5, tests_warned=0, tests_failed=0)
    message = summary_message(RunSummary(run_id="run-1", snapshot_id=SNAPSHOT, workbook=first, quality=clean))

    assert message == Message(
        "syno: forecasts for the next quarter from sellout.xlsx",
        "**Workbook**: sellout.xlsx, 1.5 MB, 900 rows loaded.\n"
        "Rows per sheet: 2024 900.\n"
        "First snapshot: nothing to compare with.\n"
        "Snapshot `9a8b7c6d5e4f`, run `run-1`. Published: the dashboards show this snapshot.\n"
        "\n"
        "**Quality**: dbt tests 5 passed, 0 warned, 0 failed; all quality gates passed.",
        "success",
    )


def test_the_summary_says_when_the_snapshot_was_kept_aside_or_published_on_request() -> None:
    first = WorkbookFacts(file_name="old.xlsx", size_bytes=1, sheet_rows={}, delta=SnapshotDelta(is_first=True))
    clean = QualityFacts(rows_loaded=1, tests_passed=1, tests_warned=0, tests_failed=0)

    def body(publication: str) -> str:
        summary = RunSummary(
            run_id="run-1", snapshot_id=SNAPSHOT, workbook=first, quality=clean, publication=publication
        )
        return summary_message(summary).body

    assert "Not published: its data is older than the published snapshot's" in body("kept_aside_older")
    assert "Published on request (a forced replay)" in body("published_forced")


def test_escaping_keeps_data_text_literal_but_leaves_words_with_inner_underscores_alone() -> None:
    assert escape_markdown("*Acme* [x](http://evil) <b>`rm`</b> \\ _lead_ sales_rep") == (
        "\\*Acme\\* \\[x\\](http://evil) \\<b\\>\\`rm\\`\\</b\\> \\\\ \\_lead\\_ sales_rep"
    )
