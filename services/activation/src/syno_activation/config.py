"""Settings -> the plain config objects of the edge clients (secrets unwrapped only here)."""

from __future__ import annotations

from syno_activation.catalog import LineageTransportConfig
from syno_activation.metabase import MetabaseConfig
from syno_shared.settings import ActivationSettings


def metabase_config(settings: ActivationSettings) -> MetabaseConfig:
    metabase = settings.metabase
    return MetabaseConfig(
        url=metabase.url,
        mode=metabase.mode,
        api_key=metabase.api_key.get_secret_value() if metabase.api_key else None,
        username=metabase.username,
        password=metabase.password.get_secret_value() if metabase.password else None,
        database_id=metabase.database_id,
        dashboard_ids=tuple(metabase.dashboard_ids),
        card_ids=tuple(metabase.card_ids),
        sentinel_card_id=metabase.sentinel_card_id,
        n8n_webhook_url=metabase.n8n_webhook_url.get_secret_value() if metabase.n8n_webhook_url else None,
    )


def lineage_config(settings: ActivationSettings) -> LineageTransportConfig:
    lineage = settings.lineage
    return LineageTransportConfig(
        kind=lineage.transport,
        file_path=str(lineage.file_path) if lineage.file_path else None,
        url=lineage.url,
        api_key=lineage.api_key.get_secret_value() if lineage.api_key else None,
    )


def notify_urls(settings: ActivationSettings) -> list[str]:
    return [url.get_secret_value() for url in settings.notify_urls]
