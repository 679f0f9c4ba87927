"""Activation's settings come from SYNO_ACTIVATION__ variables; secrets are unwrapped only into the edge configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syno_activation.levers import StorylineRules
from syno_activation.lineage import LineageTransportConfig
from syno_activation.metabase import MetabaseConfig
from syno_activation.settings import ActivationSettings


def test_the_activation_group_reads_its_variables_and_hands_plain_configs_to_the_edges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("SYNO_ACTIVATION__NOTIFY_URLS", '["slack://T/B/slack-secret", "json://hooks.local/x"]')
    monkeypatch.setenv("SYNO_ACTIVATION__METABASE__MODE", "card_refresh")
    monkeypatch.setenv("SYNO_ACTIVATION__METABASE__API_KEY", "mb-secret")
    monkeypatch.setenv("SYNO_ACTIVATION__METABASE__CARD_IDS", "[11, 12]")
    monkeypatch.setenv("SYNO_ACTIVATION__LINEAGE__TRANSPORT", "http")
    monkeypatch.setenv("SYNO_ACTIVATION__LINEAGE__URL", "http://marquez:5000")
    monkeypatch.setenv("SYNO_ACTIVATION__LINEAGE__API_KEY", "lineage-secret")
    monkeypatch.setenv("SYNO_MAX_DELIVER", "7")

    settings = ActivationSettings()
    activation = settings.activation

    assert settings.max_deliver == 7  # the common settings come along
    assert activation.notify_url_values() == ["slack://T/B/slack-secret", "json://hooks.local/x"]
    assert activation.metabase.client_config() == MetabaseConfig(
        url="http://localhost:3000", mode="card_refresh", api_key="mb-secret", card_ids=(11, 12)
    )
    assert activation.lineage.transport_config() == LineageTransportConfig(
        kind="http", url="http://marquez:5000", api_key="lineage-secret"
    )
    for secret in ("slack-secret", "mb-secret", "lineage-secret"):
        assert secret not in repr(settings)


def test_by_default_nothing_is_refreshed_sent_or_emitted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SYNO_ACTIVATION__")]:
        monkeypatch.delenv(name)
    activation = ActivationSettings().activation

    assert (activation.metabase.mode, activation.lineage.transport, activation.notify_url_values()) == (
        "off",
        "off",
        [],
    )


def test_the_storyline_thresholds_are_activation_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SYNO_ACTIVATION__")]:
        monkeypatch.delenv(name)
    assert ActivationSettings().activation.storyline_rules() == StorylineRules()

    monkeypatch.setenv("SYNO_ACTIVATION__MIN_CUSTOMERS", "5")
    monkeypatch.setenv("SYNO_ACTIVATION__MIN_REVENUE_USD", "25000")
    monkeypatch.setenv("SYNO_ACTIVATION__DECLINE_THRESHOLD", "0.3")
    monkeypatch.setenv("SYNO_ACTIVATION__GROWTH_THRESHOLD", "0.5")
    monkeypatch.setenv("SYNO_ACTIVATION__FORECAST_DECLINE", "0.15")
    monkeypatch.setenv("SYNO_ACTIVATION__TOP_OPPORTUNITIES", "3")
    monkeypatch.setenv("SYNO_ACTIVATION__DASHBOARD_LINKS", '{"opportunities": "http://mb/dashboard/9"}')
    activation = ActivationSettings().activation

    assert activation.storyline_rules() == StorylineRules(
        min_customers=5,
        min_revenue_usd=25_000.0,
        decline_threshold=0.3,
        growth_threshold=0.5,
        forecast_decline=0.15,
        top_opportunities=3,
    )
    assert activation.dashboard_links == {"opportunities": "http://mb/dashboard/9"}


def test_summary_and_alert_targets_and_the_accuracy_margin_come_from_their_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("SYNO_ACTIVATION__")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SYNO_ACTIVATION__NOTIFY_URLS", '["json://hooks.local/both-secret"]')
    monkeypatch.setenv("SYNO_ACTIVATION__ALERT_URLS", '["slack://T/B/oncall-secret"]')
    monkeypatch.setenv("SYNO_ACTIVATION__ACCURACY_MARGIN", "2.5")

    settings = ActivationSettings()
    activation = settings.activation

    assert (activation.summary_url_values(), activation.alert_url_values(), activation.accuracy_margin) == (
        ["json://hooks.local/both-secret"],
        ["slack://T/B/oncall-secret"],
        2.5,
    )
    assert "oncall-secret" not in repr(settings) and "both-secret" not in repr(settings)
