"""Activation's settings: the common ones plus the activation group (SYNO_ACTIVATION__...).

Secrets stay `SecretStr` here; the `*_config` methods and `channels` unwrap them into the plain config objects
of the edge clients, and nothing else does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from syno_activation.deadlines import DeadlineOptions
from syno_activation.deliverer import Channels
from syno_activation.delivery import channel_id
from syno_activation.levers import StorylineRules
from syno_activation.lineage import LineageTransportConfig
from syno_activation.metabase import MetabaseConfig
from syno_shared.service import Service
from syno_shared.settings import Settings

_RULES = StorylineRules()  # the defaults, defined once


class MetabaseSettings(BaseModel):
    mode: Literal["invalidate", "card_refresh", "n8n", "off"] = Field(
        default="off", description="invalidate (paid editions), card_refresh (open source), n8n webhook, or off."
    )
    url: str = Field(default="http://localhost:3000", description="Metabase base URL.")
    api_key: SecretStr | None = Field(default=None, description="Metabase API key (x-api-key header).")
    username: str | None = Field(default=None, description="For a session login when there is no API key.")
    password: SecretStr | None = Field(default=None, description="Password for the session login.")
    database_id: int | None = Field(default=None, description="Warehouse database id in Metabase.")
    dashboard_ids: list[int] = Field(default_factory=list, description="Dashboards whose cache is invalidated.")
    card_ids: list[int] = Field(default_factory=list, description="Cards re-run with ignore_cache.")
    sentinel_card_id: int | None = Field(default=None, description="A card that shows the snapshot id.")
    n8n_webhook_url: SecretStr | None = Field(default=None, description="n8n webhook for mode n8n.")

    def client_config(self) -> MetabaseConfig:
        return MetabaseConfig(
            url=self.url,
            mode=self.mode,
            api_key=_reveal(self.api_key),
            username=self.username,
            password=_reveal(self.password),
            database_id=self.database_id,
            dashboard_ids=tuple(self.dashboard_ids),
            card_ids=tuple(self.card_ids),
            sentinel_card_id=self.sentinel_card_id,
            n8n_webhook_url=_reveal(self.n8n_webhook_url),
        )


class LineageSettings(BaseModel):
    transport: Literal["console", "file", "http", "off"] = Field(default="off", description="OpenLineage transport.")
    file_path: Path | None = Field(default=None, description="JSON-lines file for the file transport.")
    url: str | None = Field(default=None, description="Catalog base URL for the http transport (e.g. Marquez).")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the http transport.")

    def transport_config(self) -> LineageTransportConfig:
        return LineageTransportConfig(
            kind=self.transport,
            file_path=str(self.file_path) if self.file_path else None,
            url=self.url,
            api_key=_reveal(self.api_key),
        )


class ActivationOptions(BaseModel):
    notify_urls: list[SecretStr] = Field(
        default_factory=list,
        description="apprise URLs (Slack, Teams workflows, mailtos, json) for run summaries and alerts alike, where "
        "summary_urls or alert_urls is not set.",
    )
    summary_urls: list[SecretStr] = Field(
        default_factory=list, description="apprise URLs the run summaries go to (empty: notify_urls)."
    )
    alert_urls: list[SecretStr] = Field(
        default_factory=list,
        description="apprise URLs the alerts go to: pipeline.failed and missed deadlines (empty: notify_urls).",
    )
    accuracy_margin: float = Field(
        default=5.0,
        ge=0,
        description="sMAPE points by which a cohort's holdout accuracy may get worse than the previous published "
        "forecast run's before the summary says so.",
    )
    grafana_url: str = Field(default="http://localhost:3000", description="Base URL for trace links.")
    dashboard_links: dict[str, str] = Field(
        default_factory=dict,
        description="Dashboard name -> URL, listed in every summary; the 'opportunities' one (the dashboard that "
        "lists every storyline) is linked under the top opportunities.",
    )
    min_customers: int = Field(
        default=_RULES.min_customers, ge=1, description="A cell with fewer customers is anecdotal."
    )
    min_revenue_usd: float = Field(
        default=_RULES.min_revenue_usd,
        ge=0,
        description="A cell that sold less (USD) this quarter and the one before is anecdotal.",
    )
    decline_threshold: float = Field(
        default=_RULES.decline_threshold,
        gt=0,
        lt=1,
        description="An account losing this share of its revenue quarter on quarter is declining (win back).",
    )
    growth_threshold: float = Field(
        default=_RULES.growth_threshold,
        gt=0,
        description="A desktop buyer gaining this share quarter on quarter is growing (upsell rackmount).",
    )
    forecast_decline: float = Field(
        default=_RULES.forecast_decline,
        gt=0,
        lt=1,
        description="Without an 80% interval, a forecast this share below now is a decline (protect pipeline).",
    )
    top_opportunities: int = Field(
        default=_RULES.top_opportunities, ge=1, description="Opportunities the run summary leads with."
    )
    metabase: MetabaseSettings = Field(default_factory=MetabaseSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    outbox_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often pending outbox rows (a crash, a due retry) are sent."
    )
    outbox_max_attempts: int = Field(
        default=5, ge=1, description="Attempts per summary, refresh or alert before its outbox row is 'failed'."
    )
    outbox_retry_seconds: float = Field(
        default=60.0, gt=0, description="Wait after a failed delivery before the next, doubled each time."
    )
    deadlines: DeadlineOptions = Field(
        default_factory=DeadlineOptions, description="Deadlines that page a person (syno_activation.deadlines)."
    )

    def storyline_rules(self) -> StorylineRules:
        return StorylineRules(
            min_customers=self.min_customers,
            min_revenue_usd=self.min_revenue_usd,
            decline_threshold=self.decline_threshold,
            growth_threshold=self.growth_threshold,
            forecast_decline=self.forecast_decline,
            top_opportunities=self.top_opportunities,
        )

    def notify_url_values(self) -> list[str]:
        return [url.get_secret_value() for url in self.notify_urls]

    def summary_url_values(self) -> list[str]:
        """Where run summaries go: summary_urls, or notify_urls when it is empty."""
        return [url.get_secret_value() for url in self.summary_urls] or self.notify_url_values()

    def alert_url_values(self) -> list[str]:
        """Where alerts go: alert_urls, or notify_urls when it is empty."""
        return [url.get_secret_value() for url in self.alert_urls] or self.notify_url_values()

    def channels(self) -> Channels:
        """The outbox's channels: summary and alert URLs by channel id, the Metabase refresh, the retry policy."""
        return Channels(
            summary_urls={channel_id(url): url for url in self.summary_url_values()},
            alert_urls={channel_id(url): url for url in self.alert_url_values()},
            metabase=self.metabase.client_config(),
            max_attempts=self.outbox_max_attempts,
            retry_seconds=self.outbox_retry_seconds,
        )


class ActivationSettings(Settings):
    # The common Settings still declares its own copy of this group until the settings move is finished;
    # this one replaces it (same SYNO_ACTIVATION__ variables).
    activation: ActivationOptions = Field(default_factory=ActivationOptions)


ActivationService = Service[ActivationSettings]


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None
