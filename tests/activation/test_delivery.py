"""Messages through apprise to local Slack, Teams, JSON-webhook and SMTP endpoints: one result per URL."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from typing import Any

import pytest
from activation_events import FAILURE, SUMMARY, SUMMARY_BODY, SUMMARY_TITLE
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Request, TLSFiles

from syno_activation.delivery import redact_url, send_message
from syno_activation.rendering import alert_message, summary_message
from syno_shared.events import DeliveryResult

SUMMARY_MESSAGE = summary_message(SUMMARY)
ALERT_MESSAGE = alert_message(FAILURE)


def ok(request: Request) -> tuple[int, Any]:
    return 200, {"ok": True}


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
    results = send_message([f"json://127.0.0.1:{server.port}/hooks/syno"], SUMMARY_MESSAGE)

    assert results == [DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1")]
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
    results = send_message([url], SUMMARY_MESSAGE)

    assert results == [DeliveryResult(target="slack", is_ok=True, detail=detail)]
    [request] = server.requests
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    payload = request.json
    assert payload["mrkdwn"] is True
    [attachment] = payload["attachments"]
    assert attachment["title"] == SUMMARY_TITLE
    assert attachment["footer"] == "syno"
    assert attachment["text"].startswith(
        "*Top opportunities (Q3 2025)*:\n1. FR / SVR-RM buyer: Cross-sell C2 to 3 SVR-RM buyers without C2."
    )
    assert "with their accounts: <http://metabase.local/dashboard/9|opportunities>" in attachment["text"]
    assert "\n*Workbook*: sellout_2025\\*.xlsx, 12.3 MB (+0.4 MB), 123,456 rows loaded." in attachment["text"]
    assert "*FLAGGED*: above the 30.0% limit" in attachment["text"]


def test_teams_workflow_gets_an_adaptive_card(
    http_server: Callable[..., LocalHTTPServer], tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apprise always calls Teams workflows over https: the local server uses a self-signed
    certificate that requests trusts through REQUESTS_CA_BUNDLE."""
    server = http_server(lambda request: (202, b""), tls=tls_files.server_context())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.cert))
    results = send_message([f"workflows://127.0.0.1:{server.port}/wf-123/sig-SECRET/"], ALERT_MESSAGE)

    assert results == [DeliveryResult(target="workflows", is_ok=True, detail="delivered to workflows://127.0.0.1")]
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
    results = send_message([url], SUMMARY_MESSAGE)

    assert results == [DeliveryResult(target="mailto", is_ok=True, detail="delivered to mailto://127.0.0.1")]
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
    [result] = send_message([secret_url], SUMMARY_MESSAGE)

    assert result == DeliveryResult(
        target="json",
        is_ok=False,
        detail="failure sending to json://127.0.0.1: Failed to send JSON POST notification: "
        "Internal server error., error=500.",
    )
    for secret in ("hookuser", "hookPASSWORD", "TOKEN-abc123", "QUERYSECRET"):
        assert secret not in result.detail


def test_every_url_gets_its_own_result_and_unknown_urls_are_named_without_their_tokens(
    http_server: Callable[..., LocalHTTPServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = http_server(ok)
    results = send_message(
        [
            "msteams://T0KEN/A/B",
            f"json://127.0.0.1:{server.port}/a",
            "json://127.0.0.1:9/nobody-listens",
            "https://example.com/hooks/T0KEN",
        ],
        ALERT_MESSAGE,
    )

    assert results == [
        DeliveryResult(
            target="msteams",
            is_ok=False,
            detail="apprise does not recognise msteams:// as a notification URL "
            "(use workflows:// or the Power Automate URL for Teams)",
        ),
        DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1"),
        DeliveryResult(
            target="json",
            is_ok=False,
            detail="failure sending to json://127.0.0.1: "
            "A Connection error occurred sending JSON notification to 127.0.0.1.",
        ),
        DeliveryResult(
            target="https", is_ok=False, detail="apprise does not recognise https://example.com as a notification URL"
        ),
    ]
    assert server.requests[0].json["type"] == "failure"
    assert "T0KEN" not in caplog.text  # apprise's own log of the unparseable URL is redacted too


def test_no_urls_no_results() -> None:
    assert send_message([], SUMMARY_MESSAGE) == []
