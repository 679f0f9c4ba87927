"""Summaries and alerts through apprise to local Slack, Teams, JSON-webhook and SMTP endpoints."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Request, TLSFiles

from syno_activation.notify import (
    ChannelResult,
    alert_message,
    redact_url,
    send_alert,
    send_summary,
    summary_message,
)
from syno_activation.summary import Link, RunSummary
from syno_shared.events import (
    CohortForecast,
    PipelineFailed,
    QualityFacts,
    QualityGateResult,
    SnapshotDelta,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookFacts,
)

SNAPSHOT = "9a8b7c6d5e4f" + "0" * 52

WORKBOOK = WorkbookFacts(
    file_name="sellout_2025*.xlsx",
    size_bytes=12_300_000,
    sheet_rows={"2025": 120_000, "2025-C2": 3_456, "2026": 10},
    delta=SnapshotDelta(
        is_first=False,
        previous_snapshot_id="1" * 64,
        size_bytes=400_000,
        sheets_added=["2026"],
        rows={"2025": 1_200, "2025-C2": -34},
        columns_added={"2025": ["Region", "Sales_Rep"]},
        columns_removed={"2025-C2": ["Comments"]},
    ),
)
QUALITY = QualityFacts(
    rows_loaded=123_456,
    tests_passed=120,
    tests_warned=2,
    tests_failed=0,
    quality_gates=[
        QualityGateResult(name="unmapped_products", severity="warn", passed=False),
        QualityGateResult(name="row_count", severity="error", passed=True),
    ],
    unmapped_values=[
        UnmappedValue(field="product", value="RS<b>99</b>", rows=40),
        UnmappedValue(field="country", value="Atlantis", rows=3),
        UnmappedValue(field="currency", value="XXX", rows=1),
    ],
    unconvertible_values=[UnconvertibleValue(column="invoice_date", value="31/02/2025", rows=2)],
)

SUMMARY = RunSummary(
    run_id="run-42",
    snapshot_id=SNAPSHOT,
    workbook=WORKBOOK,
    quality=QUALITY,
    top_unmapped=tuple(QUALITY.unmapped_values[:2]),
    top_unconvertible=tuple(QUALITY.unconvertible_values),
    target_quarter=date(2025, 10, 1),
    cohorts=(
        CohortForecast(cohort="overall", series_count=6, holdout_mape=11.0, holdout_smape=12.3,
                       baseline_smape=15.0, threshold_smape=25.0, is_threshold_met=True),
        CohortForecast(cohort="customer", series_count=20, holdout_mape=40.0, holdout_smape=41.5,
                       baseline_smape=38.2, threshold_smape=30.0, is_threshold_met=False),
    ),
    headlines=("SVR-RM T1: $1,200,000 (80%: $1,000,000 to $1,400,000), ets",),
    storylines=("FR / SVR-RM buyer: Cross-sell C2 to SVR-RM buyers (score 21)",),
    trace_url="http://grafana.local/explore?trace=abc",
    dashboards=(Link("Sell-out", "http://metabase.local/dashboard/3"),),
)  # fmt: skip

SUMMARY_TITLE = "syno: forecasts for Q4 2025 from sellout_2025*.xlsx (1 cohort flagged)"
SUMMARY_BODY = """\
**Workbook**: sellout_2025\\*.xlsx, 12.3 MB (+0.4 MB), 123,456 rows loaded.
Rows per sheet: 2025 120,000 (+1,200), 2025-C2 3,456 (-34), 2026 10 (new).
Since the previous snapshot: sheets added: 2026; columns added: 2025: Region, Sales_Rep; \
columns removed: 2025-C2: Comments.
Snapshot `9a8b7c6d5e4f`, run `run-42`.

**Quality**: dbt tests 120 passed, 2 warned, 0 failed; gates warned: unmapped_products.

**Unmapped values (add them to the mapping tables)**:
- product "RS\\<b\\>99\\</b\\>": 40 rows
- country "Atlantis": 3 rows
- and 1 more

**Unconvertible cells (loaded as empty)**:
- invoice_date "31/02/2025": 2 rows

**Forecast (Q4 2025)**:
- SVR-RM T1: $1,200,000 (80%: $1,000,000 to $1,400,000), ets
- overall: 6 series, sMAPE 12.3% (seasonal naive 15.0%)
- customer: 20 series, sMAPE 41.5% (seasonal naive 38.2%) **FLAGGED**: above the 30.0% limit

**Storylines**:
- FR / SVR-RM buyer: Cross-sell C2 to SVR-RM buyers (score 21)

[Trace in Grafana](http://grafana.local/explore?trace=abc) · [Sell-out](http://metabase.local/dashboard/3)"""

FAILURE = PipelineFailed(
    run_id="run-43",
    snapshot_id=SNAPSHOT,
    stage="transform",
    reason_code="dbt_test_failed",
    message="dbt test unique_sellout_quarterly failed: 3 duplicate rows.",
    is_retryable=False,
    input_reference="workbook.landed:" + SNAPSHOT,
)

ALERT_BODY = f"""\
dbt test unique_sellout_quarterly failed: 3 duplicate rows.

- Stage: transform
- Reason: `dbt_test_failed`
- Retryable: no
- Input: `workbook.landed:{SNAPSHOT}`
- Snapshot `9a8b7c6d5e4f`, run `run-43`

[Trace in Grafana](http://grafana.local/t/1)"""


def ok(request: Request) -> tuple[int, Any]:
    return 200, {"ok": True}


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


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7", "slack://"),
        ("https://hooks.slack.com/services/T1/B2/XYZsecret", "https://hooks.slack.com"),
        ("mailtos://user:pass@smtp.example.com:587?to=a@b.c", "mailtos://smtp.example.com"),
        ("json://127.0.0.1:8080/hook/s3cr3t", "json://127.0.0.1"),
        ("workflows://prod-1.westeurope.logic.azure.com:443/wf/sig", "workflows://prod-1.westeurope.logic.azure.com"),
    ],
)
def test_redact_url_keeps_scheme_and_host_only(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_json_webhook_receives_title_body_and_type(http_server: Callable[..., LocalHTTPServer]) -> None:
    server = http_server(ok)
    results = send_summary([f"json://127.0.0.1:{server.port}/hooks/syno"], SUMMARY)

    assert results == [ChannelResult("json", True, "delivered to json://127.0.0.1")]
    [request] = server.requests
    assert request.path == "/hooks/syno"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "version": "1.0",
        "title": SUMMARY_TITLE,
        "message": SUMMARY_BODY,
        "attachments": [],
        "type": "warning",
    }


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7", "delivered to slack://"),
        ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7",
         "delivered to https://hooks.slack.com"),
    ],
)  # fmt: skip
def test_slack_webhook_gets_an_attachment_with_title_and_markdown_text(
    http_server: Callable[..., LocalHTTPServer], monkeypatch: pytest.MonkeyPatch, url: str, detail: str
) -> None:
    """apprise's Slack plugin posts to a fixed https://hooks.slack.com/services base; the test points
    that class attribute at the local server, so the real plugin builds and sends the payload."""
    from apprise.plugins.slack import NotifySlack

    server = http_server(lambda request: (200, b"ok"))  # what hooks.slack.com answers
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{server.url}/services")
    results = send_summary([url], SUMMARY)

    assert results == [ChannelResult("slack", True, detail)]
    [request] = server.requests
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    payload = request.json
    assert payload["mrkdwn"] is True
    [attachment] = payload["attachments"]
    assert attachment["title"] == SUMMARY_TITLE
    assert attachment["footer"] == "syno"
    assert attachment["text"].startswith("*Workbook*: sellout_2025\\*.xlsx, 12.3 MB (+0.4 MB), 123,456 rows loaded.")
    assert "*FLAGGED*: above the 30.0% limit" in attachment["text"]


def test_teams_workflow_gets_an_adaptive_card(
    http_server: Callable[..., LocalHTTPServer], tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apprise always calls Teams workflows over https: the local server uses a self-signed
    certificate that requests trusts through REQUESTS_CA_BUNDLE."""
    server = http_server(lambda request: (202, b""), tls=tls_files.server_context())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.cert))
    results = send_alert([f"workflows://127.0.0.1:{server.port}/wf-123/sig-SECRET/"], FAILURE)

    assert results == [ChannelResult("workflows", True, "delivered to workflows://127.0.0.1")]
    [request] = server.requests
    assert request.path == "/workflows/wf-123/triggers/manual/paths/invoke"
    assert request.query["sig"] == ["sig-SECRET"]
    assert request.json["type"] == "message"
    [attachment] = request.json["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = {block.get("id"): block.get("text") for block in attachment["content"]["body"]}
    assert texts["title"] == "syno: transform failed (dbt_test_failed)"
    assert texts["body"].startswith("dbt test unique_sellout_quarterly failed: 3 duplicate rows.")


def test_email_summary_arrives_with_subject_and_html_and_text_parts(smtp_server: LocalSMTPServer) -> None:
    url = f"mailto://syno:mail-PASSWORD@127.0.0.1:{smtp_server.port}?from=syno@example.com&to=sales@example.com"
    results = send_summary([url], SUMMARY)

    assert results == [ChannelResult("mailto", True, "delivered to mailto://127.0.0.1")]
    [mail] = smtp_server.messages
    assert (mail.mail_from, mail.recipients) == ("<syno@example.com>", ["<sales@example.com>"])
    assert mail.auth is not None and mail.auth.startswith("AUTH PLAIN")
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert message["Subject"] == SUMMARY_TITLE
    assert message["To"] == "sales@example.com"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert "Workbook: sellout_2025*.xlsx, 12.3 MB (+0.4 MB), 123,456 rows loaded." in plain.get_content()
    assert "<strong>Workbook</strong>: sellout_2025*.xlsx" in html.get_content()
    assert 'product "RS&lt;b&gt;99&lt;/b&gt;": 40 rows' in html.get_content()


def test_a_failing_endpoint_is_reported_without_leaking_the_url_secrets(
    http_server: Callable[..., LocalHTTPServer],
) -> None:
    server = http_server(lambda request: (500, {"error": "boom"}))
    secret_url = f"json://hookuser:hookPASSWORD@127.0.0.1:{server.port}/hooks/TOKEN-abc123?key=QUERYSECRET"
    [result] = send_summary([secret_url], SUMMARY)

    assert result == ChannelResult(
        "json",
        False,
        "failure sending to json://127.0.0.1: Failed to send JSON POST notification: "
        "Internal server error., error=500.",
    )
    for secret in ("hookuser", "hookPASSWORD", "TOKEN-abc123", "QUERYSECRET"):
        assert secret not in result.detail


def test_every_url_gets_its_own_result_and_unknown_urls_are_named_without_their_tokens(
    http_server: Callable[..., LocalHTTPServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = http_server(ok)
    results = send_alert(
        [
            "msteams://T0KEN/A/B",
            f"json://127.0.0.1:{server.port}/a",
            "json://127.0.0.1:9/nobody-listens",
            "https://example.com/hooks/T0KEN",
        ],
        FAILURE,
    )

    assert results == [
        ChannelResult(
            "msteams",
            False,
            "apprise does not recognise msteams:// as a notification URL "
            "(use workflows:// or the Power Automate URL for Teams)",
        ),
        ChannelResult("json", True, "delivered to json://127.0.0.1"),
        ChannelResult(
            "json",
            False,
            "failure sending to json://127.0.0.1: A Connection error occurred sending JSON notification to 127.0.0.1.",
        ),
        ChannelResult("https", False, "apprise does not recognise https://example.com as a notification URL"),
    ]
    assert server.requests[0].json["type"] == "failure"
    assert "T0KEN" not in caplog.text  # apprise's own log of the unparseable URL is redacted too


def test_no_urls_no_results() -> None:
    assert send_summary([], SUMMARY) == []
