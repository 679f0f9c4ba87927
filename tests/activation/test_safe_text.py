"""Cell text a spreadsheet would run as a formula is neutralised wherever it leaves activation (issue 12): the
rule on its own, then names from a hostile workbook through storylines, narratives, the rendered summary, the
alert, an e-mail and a JSON webhook."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from activation_events import forecast_event
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Request
from activation_samples import Q2, Q3, inputs, snapshot_rows

from syno_activation.delivery import send_message
from syno_activation.rendering import Message, alert_message, summary_message
from syno_activation.report import build_report
from syno_activation.safe_text import escape_markdown, is_formula, markdown_text, neutralise_formula
from syno_activation.summary import build_run_summary
from syno_shared.events import (
    PipelineFailed,
    QualityFacts,
    SnapshotDelta,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookFacts,
)

HYPERLINK = '=HYPERLINK("http://x","y")'
AT_SUM = "@SUM(A1)"
DDE = "+cmd|' /C calc'!A0"
DDE_EQUALS = "=cmd|' /C calc'!A0"
ARITHMETIC = "-2+3"
MARKDOWN = "*Bold_[x](y)*"
UNICODE = "Ünïcødé 株式会社"


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        (AT_SUM, "'@SUM(A1)"),
        (DDE, "'+cmd|' /C calc'!A0"),
        (DDE_EQUALS, "'=cmd|' /C calc'!A0"),
        (ARITHMETIC, "'-2+3"),
        ("\t=1+1", "'\t=1+1"),  # a spreadsheet skips the tab and runs the rest
        ("\rAcme", "'\rAcme"),  # a leading tab or carriage return is flagged on its own (OWASP)
        ("  =1+1", "'  =1+1"),  # and leading spaces too
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),  # the fullwidth equals sign
        # Plain numbers are no formula: figures stay figures.
        ("-12.5", "-12.5"),
        ("-1,234", "-1,234"),
        ("+3", "+3"),
        ("-60.0%", "-60.0%"),
        # Names that merely contain the characters.
        ("Acme = Best", "Acme = Best"),
        ("a@b.c", "a@b.c"),
        ("Jean-Luc", "Jean-Luc"),
        (UNICODE, UNICODE),
        ("", ""),
    ],
)
def test_text_a_spreadsheet_would_run_gets_a_quote_in_front_and_nothing_else_changes(text: str, safe: str) -> None:
    assert (neutralise_formula(text), is_formula(text)) == (safe, safe != text)


def test_a_message_holds_data_text_neutralised_then_escaped_for_markdown() -> None:
    assert [markdown_text(text) for text in (HYPERLINK, MARKDOWN, "=*x*", UNICODE, "-5")] == [
        '\'=HYPERLINK("http://x","y")',
        "\\*Bold\\_\\[x\\](y)\\*",
        "'=\\*x\\*",
        UNICODE,
        "-5",
    ]
    assert escape_markdown(HYPERLINK) == HYPERLINK  # the markdown escape alone would let the formula through


def accept(request: Request) -> tuple[int, Any]:
    return 200, {"ok": True}


def hostile_summary_body() -> tuple[str, str]:
    """Title and body of the run summary of a snapshot whose customers, products, countries, sheets and file carry
    formulas, markdown and unicode. FR, Q2 -> Q3 2025 (the forecast targets Q4 2025):

    - '=HYPERLINK(...)' 100K -> 50K: the only decline (win back, 50K at stake), and the largest customer in Q2;
    - '@SUM(A1)' 90K, '+cmd|...' 80K, '-2+3' 70K, '*Bold_[x](y)*' 60K and 'Ünïcødé 株式会社' 55K, flat.

    Six customers selling 100K or more: material, so the win back is of high confidence.

    Q3's top five customers by revenue: @SUM 90K, +cmd 80K, -2+3 70K, *Bold* 60K, Ünïcødé 55K (=HYPERLINK's 50K is
    sixth). Every customer narrative starts with the customer's name.
    """
    names = [(HYPERLINK, 100_000.0, 50_000.0), (AT_SUM, 90e3, 90e3), (DDE, 80e3, 80e3), (ARITHMETIC, 70e3, 70e3),
             (MARKDOWN, 60e3, 60e3), (UNICODE, 55e3, 55e3)]  # fmt: skip
    rows = [
        (quarter, "FR", name, "Other", revenue, None, None, False, "steady")
        for name, before, now in names
        for quarter, revenue in ((Q2, before), (Q3, now))
    ]
    report = build_report(inputs(snapshot_rows(rows)), target_quarter=date(2025, 10, 1))
    event = forecast_event().model_copy(
        update={
            "workbook": WorkbookFacts(
                file_name="=cmd|' -2+3.xlsx",
                size_bytes=1_000_000,
                sheet_rows={"@2025": 10, "2025": 20},
                delta=SnapshotDelta(
                    is_first=False,
                    previous_snapshot_id="1" * 64,
                    rows={"2025": -5},
                    sheets_added=["@2025"],
                    columns_added={"2025": ["=Region", "-Rep"]},
                ),
            ),
            "quality": QualityFacts(
                rows_loaded=30,
                tests_passed=1,
                tests_warned=0,
                tests_failed=0,
                unmapped_values=[
                    UnmappedValue(field="product", value=DDE_EQUALS, rows=3),
                    UnmappedValue(field="country", value=AT_SUM, rows=2),
                    UnmappedValue(field="currency", value="-5", rows=1),
                ],
                unconvertible_values=[UnconvertibleValue(column="+Total", value=HYPERLINK, rows=1)],
            ),
        }
    )
    summary = build_run_summary(forecast=event, report=report, grafana_url="http://g", trace_id=None, dashboards={})
    message = summary_message(summary)
    return message.title, message.body


def list_items(body: str) -> list[str]:
    """Each line of a body without its list marker ('- ', '1. '): what a cell holds when it is pasted."""
    items = []
    for line in body.splitlines():
        marker, _, rest = line.partition(" ")
        items.append(rest if marker == "-" or (marker.endswith(".") and marker[:-1].isdigit()) else line)
    return items


def test_the_summary_neutralises_every_name_that_would_run_as_a_formula() -> None:
    title, body = hostile_summary_body()

    # No item of the message starts as a formula would (checked here by hand, not with the code under test).
    assert [item for item in list_items(body) if item[:1] in ("=", "+", "-", "@", "\t", "\r")] == []
    assert title == "syno: forecasts for Q4 2025 from '=cmd|' -2+3.xlsx"
    # The decline's one account, named first in its opportunity line.
    assert (
        '1. \'=HYPERLINK("http://x","y") (FR / Other): Win back 1 declining account: -$50.0K (-50.0%) vs Q2 2025. '
        "$50.0K at stake, high confidence." in body.splitlines()
    )
    # The top customers' narratives, each starting with its name: neutralised, markdown escaped, unicode kept.
    narrative_starts = [line.split(" (FR, Other)")[0] for line in body.splitlines() if " (FR, Other) in Q3" in line]
    assert narrative_starts == [
        "- '@SUM(A1)",
        "- '+cmd|' /C calc'!A0",
        "- '-2+3",
        "- \\*Bold\\_\\[x\\](y)\\*",
        "- " + UNICODE,
    ]
    # File, sheet and column names, unmapped and unconvertible values; the plain number -5 and the figures stay.
    assert "**Workbook**: '=cmd|' -2+3.xlsx, 1.0 MB, 30 rows loaded." in body
    assert "Rows per sheet: 2025 20 (-5), '@2025 10 (new)." in body
    assert "columns added: 2025: '=Region, '-Rep." in body
    assert "- product \"'=cmd|' /C calc'!A0\": 3 rows" in body
    assert '- country "\'@SUM(A1)": 2 rows' in body
    assert '- currency "-5": 1 row' in body
    assert '- \'+Total "\'=HYPERLINK("http://x","y")": 1 row' in body


def test_an_alert_neutralises_its_message_and_input_and_scrubs_passwords() -> None:
    failure = PipelineFailed(
        run_id="run-9",
        snapshot_id="a" * 64,
        stage="ingestion",
        reason_code="unreadable`code",
        message="=cmd|' /C calc'!A0 in sheet @2025; postgresql://syno:hunter2@db:5432/syno refused",
        is_retryable=False,
        input_reference="@SUM(A1).xlsx",
    )
    body = alert_message(failure).body

    assert body.splitlines() == [
        "'=cmd|' /C calc'!A0 in sheet @2025; postgresql://syno:\\*\\*\\*@db:5432/syno refused",
        "",
        "- Stage: ingestion",
        "- Reason: ``unreadable`code``",
        "- Retryable: no",
        "- Input: `'@SUM(A1).xlsx`",
        "- Snapshot `aaaaaaaaaaaa`, run `run-9`",
    ]


def test_an_email_and_a_webhook_carry_the_names_neutralised(
    smtp_server: LocalSMTPServer, http_server: Callable[..., LocalHTTPServer]
) -> None:
    """What reaches people: the plain-text part of the e-mail and the webhook's message, as sent."""
    title, body = hostile_summary_body()
    webhook = http_server(accept)
    mail_url = f"mailto://syno:pw@127.0.0.1:{smtp_server.port}?from=syno@example.com&to=sales@example.com"

    results = send_message([mail_url, f"json://127.0.0.1:{webhook.port}/hook"], Message(title, body))

    assert [result.is_ok for result in results] == [True, True]
    [mail] = smtp_server.messages
    plain = email.message_from_bytes(mail.data, policy=email.policy.default).get_body(("plain",))
    assert plain is not None
    text = plain.get_content()
    for neutralised in ('\'=HYPERLINK("http://x","y")', "'@SUM(A1)", "'+cmd|' /C calc'!A0", "'-2+3", UNICODE):
        assert neutralised in text
    assert [line for line in text.splitlines() if line.lstrip("-• 0123456789.")[:1] in ("=", "+", "@")] == []
    [request] = webhook.requests
    assert request.json is not None and request.json["message"] == body
