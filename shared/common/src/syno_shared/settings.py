"""Settings from the environment (prefix SYNO_) and an optional .env file.

Built inside each app factory and passed down; never a module-level global. These are the
settings every process shares; each service adds its own group in its `settings.py` (a subclass
of `Settings`), read with a double underscore: SYNO_INGESTION__STABLE_POLLS=3.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNO_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    nats_url: str | None = Field(default=None, description="NATS server; unset = start an embedded one.")
    nats_user: str | None = Field(
        default=None, description="NATS user this process logs in as (each service its own); unset = the URL's."
    )
    nats_password: SecretStr | None = Field(default=None, description="Password of SYNO_NATS_USER.")
    pg_dsn: str | None = Field(
        default=None,
        description="PostgreSQL DSN, with the process's own role and password; unset = start an embedded one.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description=(
            "Apply pending migrations at start-up with SYNO_PG_DSN (one all-powerful role, e.g. in tests); "
            "false where the deployment's setup applies them as the owner role, which the services' roles are not."
        ),
    )
    data_dir: Path = Field(default=Path("data"), description="Holds raw/, processed/, quarantine/.")
    mapping_dir: Path | None = Field(default=None, description="Reference CSVs; default: data_dir/mapping_table.")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector base URL, e.g. http://localhost:4318; unset = no export."
    )
    stream_name: str = Field(default="SYNO", description="The JetStream stream holding all subjects.")
    max_deliver: int = Field(default=5, ge=1, description="Deliveries before a message is given up.")
    log_format: str = Field(default="auto", description="'json', 'console' or 'auto' (console on a TTY).")

    def nats_login_url(self) -> str | None:
        """SYNO_NATS_URL logging in as SYNO_NATS_USER (the operator, for the CLI) when one is set; else as is.

        For the CLI's own connections (replay, dead letters, status, pause); services log in through
        `bus.create_broker(user=...)`, which also confines their replies to the user's inbox prefix.
        """
        if self.nats_url is None or self.nats_user is None:
            return self.nats_url
        password = self.nats_password.get_secret_value() if self.nats_password is not None else ""
        return with_login(self.nats_url, self.nats_user, password)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.data_dir / "processed"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def mapping_table_dir(self) -> Path:
        return self.mapping_dir if self.mapping_dir is not None else self.data_dir / "mapping_table"


def with_login(url: str, user: str, password: str) -> str:
    """The same server URL or DSN, logging in as `user` with `password` (both percent-encoded)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))
