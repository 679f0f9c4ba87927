"""`syno metabase provision`: Metabase as code, from the files under deploy/metabase/.

`metabase.yaml` there names the collection, the warehouse connection (the read-only role syno_reader), the
questions (native SQL, one file each in questions/, `-- include: <file>` lines inlined) and the dashboards.
Provisioning talks to Metabase's documented REST API only:

- ``GET/POST/PUT /api/collection``, ``GET/POST/PUT /api/database``, ``GET /api/card?f=all``,
  ``POST/PUT /api/card``, ``GET /api/collection/:id/items?models=dashboard``, ``GET/POST/PUT /api/dashboard``
  (the dashcards go in ``PUT /api/dashboard/:id``, new ones with negative ids);
- auth: ``x-api-key`` (SYNO_METABASE_API_KEY, an admin's key: it creates a database) or a session from
  ``POST /api/session`` (SYNO_METABASE_USERNAME / SYNO_METABASE_PASSWORD) sent as ``X-Metabase-Session``.

Every object gets a tag at the end of its description, ``[syno:<key> <12 hex>]``: the key finds it again on
the next run (then the name, in the collection: a hand-made object of that name is adopted), and the hash is
that of everything the files say about it, so a run changes exactly the objects whose files changed and makes
no call that writes otherwise. Metabase redacts a database password when it is read back, so the password is
sent when the database is created, or when asked (`--set-password`, after a rotation). No password, key or
session token is printed, nor kept in an error message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import httpx
import typer
import yaml
from rich.console import Console

from syno_shared.provision import secret_from_environment

app = typer.Typer(help="Metabase as code: the warehouse connection, questions and dashboards.", no_args_is_help=True)
err = Console(stderr=True)

DEFAULT_FOLDER: Final = Path("deploy/metabase")
MANIFEST: Final = "metabase.yaml"
_TAG = re.compile(r"\[syno:(?P<key>[a-z0-9_:]+) (?P<digest>[0-9a-f]{12})\]\s*$")
_ENV = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")
_INCLUDE = re.compile(r"^-- include: (?P<file>[\w.-]+)$", re.MULTILINE)
_OPTIONAL = re.compile(r"\[\[(?P<body>.*?)\]\]", re.DOTALL)
_TAG_NAMESPACE: Final = uuid.UUID("6f1d7c3a-52b1-4e0e-9a57-5b1f3d0c2e11")  # template-tag ids: same every run

Outcome = Literal["created", "updated", "unchanged"]


class ProvisionFailed(Exception):
    """Metabase refused a call, or the files are wrong: one sentence naming what to fix."""


# --- the files ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionParameter:
    name: str
    display_name: str
    type: str = "number"


@dataclass(frozen=True)
class Question:
    key: str
    name: str
    description: str
    sql: str
    display: str = "table"
    visualization_settings: Mapping[str, Any] = field(default_factory=dict)
    parameters: tuple[QuestionParameter, ...] = ()
    is_sentinel: bool = False


@dataclass(frozen=True)
class DashboardCard:
    question: str
    row: int
    col: int
    size_x: int
    size_y: int
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Dashboard parameter slug -> the question's template tag it filters."""


@dataclass(frozen=True)
class Dashboard:
    key: str
    name: str
    description: str
    cards: tuple[DashboardCard, ...]
    parameters: tuple[Mapping[str, str], ...] = ()
    link_name: str | None = None


@dataclass(frozen=True)
class Warehouse:
    name: str
    engine: str
    details: Mapping[str, Any]
    """Everything but the password, which comes from `password_variable` in the environment."""
    password_variable: str


@dataclass(frozen=True)
class Manifest:
    collection_name: str
    collection_description: str
    warehouse: Warehouse
    questions: tuple[Question, ...]
    dashboards: tuple[Dashboard, ...]


def expand_environment(value: Any, environ: Mapping[str, str]) -> Any:
    """`${NAME:-default}` in a string from the environment; a whole-number result becomes an int (a port)."""
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        found = environ.get(match["name"]) or match["default"]
        if found is None:
            raise ProvisionFailed(f"{match['name']} is not set (deploy/metabase/{MANIFEST} reads it)")
        return found

    expanded = _ENV.sub(lookup, value)
    return int(expanded) if expanded.isdigit() and expanded != value else expanded


def question_sql(folder: Path, file_name: str) -> str:
    """A question's SQL with its `-- include: <file>` lines replaced by those files (from the same folder)."""
    path = folder / file_name
    if not path.is_file():
        raise ProvisionFailed(f"no SQL file {path}")
    text = path.read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: question_sql(folder, match["file"]).rstrip("\n"), text).strip() + "\n"


def sql_as_run(sql: str, values: Mapping[str, str] | None = None) -> str:
    """The SQL Metabase sends to the warehouse: each `[[...]]` kept with its `{{tag}}` set from `values`, or
    dropped when a tag in it has no value (as with an unset filter)."""
    values = values or {}

    def optional(match: re.Match[str]) -> str:
        body = match["body"]
        tags = re.findall(r"\{\{\s*(\w+)\s*\}\}", body)
        return body if tags and all(tag in values for tag in tags) else ""

    kept = _OPTIONAL.sub(optional, sql)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: values[match[1]], kept)


def load_manifest(folder: Path, environ: Mapping[str, str] | None = None) -> Manifest:
    environ = os.environ if environ is None else environ
    path = folder / MANIFEST
    if not path.is_file():
        raise ProvisionFailed(f"no {path}: pass --folder (the deploy/metabase folder of the checkout)")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    database = spec["database"]
    warehouse = Warehouse(
        name=database["name"],
        engine=database["engine"],
        details={key: expand_environment(value, environ) for key, value in database["details"].items()},
        password_variable=database["password_variable"],
    )
    questions = tuple(
        Question(
            key=item["key"],
            name=item["name"],
            description=item["description"],
            sql=question_sql(folder / "questions", item.get("sql", f"{item['key']}.sql")),
            display=item.get("display", "table"),
            visualization_settings=item.get("visualization_settings") or {},
            parameters=tuple(QuestionParameter(**parameter) for parameter in item.get("parameters") or ()),
            is_sentinel=bool(item.get("sentinel", False)),
        )
        for item in spec["questions"]
    )
    keys = {question.key for question in questions}
    dashboards = []
    for item in spec["dashboards"]:
        cards = tuple(DashboardCard(**card) for card in item["cards"])
        unknown = sorted({card.question for card in cards} - keys)
        if unknown:
            raise ProvisionFailed(f"dashboard {item['key']} shows questions {unknown} that {path} does not define")
        dashboards.append(
            Dashboard(
                key=item["key"],
                name=item["name"],
                description=item["description"],
                cards=cards,
                parameters=tuple(item.get("parameters") or ()),
                link_name=item.get("link_name"),
            )
        )
    if sum(question.is_sentinel for question in questions) > 1:
        raise ProvisionFailed(f"{path}: at most one question is the sentinel")
    collection = spec["collection"]
    return Manifest(collection["name"], collection["description"], warehouse, questions, tuple(dashboards))


# --- what Metabase should hold (pure) -----------------------------------------------------------------------


def digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:12]


def tagged(description: str, key: str, content: Any) -> str:
    return f"{description}\n\n[syno:{key} {digest(content)}]"


def tag_of(description: str | None) -> tuple[str, str] | None:
    match = _TAG.search(description or "")
    return (match["key"], match["digest"]) if match else None


def template_tags(question: Question) -> dict[str, dict[str, Any]]:
    return {
        parameter.name: {
            "id": str(uuid.uuid5(_TAG_NAMESPACE, f"{question.key}/{parameter.name}")),
            "name": parameter.name,
            "display-name": parameter.display_name,
            "type": parameter.type,
        }
        for parameter in question.parameters
    }


def card_body(question: Question, *, database_id: int, collection_id: int) -> dict[str, Any]:
    """POST/PUT /api/card: a native question in the collection, tagged with the hash of all of it."""
    content = {
        "name": question.name,
        "display": question.display,
        "visualization_settings": dict(question.visualization_settings),
        "collection_id": collection_id,
        "dataset_query": {
            "database": database_id,
            "type": "native",
            "native": {"query": question.sql, "template-tags": template_tags(question)},
        },
    }
    return {**content, "description": tagged(question.description, f"card:{question.key}", content)}


def dashboard_content(
    dashboard: Dashboard, *, collection_id: int, card_ids: Mapping[str, int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The dashboard's fields and its dashcards (without ids) as PUT /api/dashboard/:id takes them."""
    parameters = [
        {"id": item["slug"], "name": item["name"], "slug": item["slug"], "type": item["type"]}
        for item in dashboard.parameters
    ]
    dashcards = [
        {
            "card_id": card_ids[card.question],
            "row": card.row,
            "col": card.col,
            "size_x": card.size_x,
            "size_y": card.size_y,
            "parameter_mappings": [
                {
                    "parameter_id": slug,
                    "card_id": card_ids[card.question],
                    "target": ["variable", ["template-tag", tag]],
                }
                for slug, tag in sorted(card.parameters.items())
            ],
        }
        for card in dashboard.cards
    ]
    fields = {"name": dashboard.name, "collection_id": collection_id, "parameters": parameters}
    description = tagged(dashboard.description, f"dashboard:{dashboard.key}", {**fields, "dashcards": dashcards})
    return {**fields, "description": description}, dashcards


def _layout(dashcards: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((d.get("card_id"), d.get("row"), d.get("col"), d.get("size_x"), d.get("size_y")) for d in dashcards)


def _native_query(card: Mapping[str, Any]) -> str | None:
    """The SQL of a card as Metabase returns it: legacy `native.query`, or the first stage's `native` (MBQL 5)."""
    query = card.get("dataset_query") or {}
    native = query.get("native")
    if isinstance(native, dict):
        return native.get("query")
    stages = query.get("stages") or []
    if stages and isinstance(stages[0], dict):
        found = stages[0].get("native")
        return found if isinstance(found, str) else None
    return None


def _rows(body: Any) -> list[dict[str, Any]]:
    """A list answer, bare or wrapped in {"data": [...]} (the API has both)."""
    rows = body.get("data", []) if isinstance(body, dict) else body
    return [row for row in rows or [] if isinstance(row, dict)]


def _find(rows: list[dict[str, Any]], key: str, name: str, **where: Any) -> dict[str, Any] | None:
    """The live object tagged `key`; else one of that name (with `where`) to adopt; archived ones are skipped."""
    live = [row for row in rows if not row.get("archived")]
    for row in live:
        tag = tag_of(row.get("description"))
        if tag is not None and tag[0] == key:
            return row
    for row in live:
        if row.get("name") == name and all(row.get(field_name) == value for field_name, value in where.items()):
            return row
    return None


# --- talking to Metabase -------------------------------------------------------------------------------------


@dataclass
class Credentials:
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        return cls(
            api_key=secret_from_environment("SYNO_METABASE_API_KEY", environ),
            username=(os.environ if environ is None else environ).get("SYNO_METABASE_USERNAME"),
            password=secret_from_environment("SYNO_METABASE_PASSWORD", environ),
        )


class MetabaseAPI:
    """The few REST calls provisioning makes; every error names the call and hides every secret."""

    def __init__(self, url: str, credentials: Credentials, *, secrets: tuple[str, ...] = (), timeout: float = 30):
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.secrets = tuple(s for s in (*secrets, credentials.api_key, credentials.password) if s)
        self.writes: list[str] = []
        if credentials.api_key:
            self.client.headers["x-api-key"] = credentials.api_key
        elif credentials.username and credentials.password:
            session = self.call(
                "POST", "/api/session", {"username": credentials.username, "password": credentials.password}
            )
            token = session.get("id") if isinstance(session, dict) else None
            if not isinstance(token, str):
                raise ProvisionFailed("Metabase answered POST /api/session without a session id")
            self.secrets += (token,)
            self.client.headers["X-Metabase-Session"] = token
        else:
            raise ProvisionFailed(
                "no Metabase credentials: set SYNO_METABASE_API_KEY (an admin's API key) or "
                "SYNO_METABASE_USERNAME and SYNO_METABASE_PASSWORD"
            )

    def _hide(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def call(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self.client.request(method, path, json=body, params=params)
        except httpx.HTTPError as error:
            raise ProvisionFailed(
                f"Metabase unreachable at {self.client.base_url} ({type(error).__name__}): check SYNO_METABASE_URL"
            ) from None
        if method != "GET" and path != "/api/session":
            self.writes.append(f"{method} {path}")
        if response.status_code in (401, 403):
            raise ProvisionFailed(
                f"{method} {path}: HTTP {response.status_code}: check SYNO_METABASE_API_KEY (an admin's key) "
                "or SYNO_METABASE_USERNAME / SYNO_METABASE_PASSWORD"
            )
        if response.status_code >= 400:
            raise ProvisionFailed(f"{method} {path}: HTTP {response.status_code}: {self._hide(response.text[:300])}")
        return response.json() if response.content else None

    def close(self) -> None:
        self.client.close()


# --- provisioning -------------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a run did, and the ids the activation service's settings need."""

    url: str
    site_url: str
    collection_id: int = 0
    database_id: int = 0
    cards: dict[str, int] = field(default_factory=dict)
    dashboards: dict[str, int] = field(default_factory=dict)
    sentinel_card_id: int | None = None
    refreshed_card_ids: list[int] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    outcomes: list[tuple[str, str, int, Outcome]] = field(default_factory=list)
    """(kind, key, id, created/updated/unchanged) per object, in the order they were provisioned."""

    def settings(self) -> dict[str, str]:
        """The activation service's environment variables (deploy/env/activation.env)."""
        values = {
            "SYNO_ACTIVATION__METABASE__DATABASE_ID": str(self.database_id),
            "SYNO_ACTIVATION__METABASE__DASHBOARD_IDS": json.dumps(sorted(self.dashboards.values())),
            "SYNO_ACTIVATION__METABASE__CARD_IDS": json.dumps(self.refreshed_card_ids),
        }
        if self.sentinel_card_id is not None:
            values["SYNO_ACTIVATION__METABASE__SENTINEL_CARD_ID"] = str(self.sentinel_card_id)
        if self.links:
            values["SYNO_ACTIVATION__DASHBOARD_LINKS"] = json.dumps(self.links)
        return values

    def as_json(self) -> dict[str, Any]:
        return {
            "collection_id": self.collection_id,
            "database_id": self.database_id,
            "cards": self.cards,
            "dashboards": self.dashboards,
            "sentinel_card_id": self.sentinel_card_id,
            "outcomes": [
                {"kind": kind, "key": key, "id": object_id, "outcome": outcome}
                for kind, key, object_id, outcome in self.outcomes
            ],
            "settings": self.settings(),
        }


def _collection(api: MetabaseAPI, manifest: Manifest, report: Report) -> int:
    description = tagged(manifest.collection_description, "collection", manifest.collection_description)
    rows = [row for row in _rows(api.call("GET", "/api/collection")) if isinstance(row.get("id"), int)]
    found = _find([row for row in rows if row.get("personal_owner_id") is None], "collection", manifest.collection_name)
    if found is None:
        body = {"name": manifest.collection_name, "description": description, "parent_id": None}
        created = api.call("POST", "/api/collection", body)
        report.outcomes.append(("collection", "collection", created["id"], "created"))
        return int(created["id"])
    outcome: Outcome = "unchanged"
    if found.get("description") != description or found.get("name") != manifest.collection_name:
        api.call(
            "PUT", f"/api/collection/{found['id']}", {"name": manifest.collection_name, "description": description}
        )
        outcome = "updated"
    report.outcomes.append(("collection", "collection", found["id"], outcome))
    return int(found["id"])


def _database(
    api: MetabaseAPI, warehouse: Warehouse, password: str | None, report: Report, *, is_setting_password: bool
) -> int:
    found = _find(_rows(api.call("GET", "/api/database")), "database", warehouse.name, engine=warehouse.engine)
    missing_password = ProvisionFailed(
        f"{warehouse.password_variable} is not set: the warehouse connection logs in as "
        f"{warehouse.details.get('user')} with it"
    )
    description = tagged("The syno warehouse, read-only (syno metabase provision).", "database", warehouse.details)
    if found is None:
        if password is None:
            raise missing_password
        body = {
            "name": warehouse.name,
            "engine": warehouse.engine,
            "details": {**warehouse.details, "password": password},
            "description": description,
            "is_full_sync": True,
        }
        created = api.call("POST", "/api/database", body)
        report.outcomes.append(("database", "database", created["id"], "created"))
        return int(created["id"])
    current = found.get("details") or {}
    is_same = all(str(current.get(key)) == str(value) for key, value in warehouse.details.items())
    outcome: Outcome = "unchanged"
    # Only the details decide (Metabase may keep no description on a database it was given one for).
    if not is_same or is_setting_password:
        if password is None:
            raise missing_password
        details = {**warehouse.details, **({"password": password} if password is not None else {})}
        body = {"name": warehouse.name, "engine": warehouse.engine, "details": details, "description": description}
        api.call("PUT", f"/api/database/{found['id']}", body)
        outcome = "updated"
    report.outcomes.append(("database", "database", found["id"], outcome))
    return int(found["id"])


def _cards(api: MetabaseAPI, manifest: Manifest, report: Report) -> None:
    existing = _rows(api.call("GET", "/api/card", params={"f": "all"}))
    for question in manifest.questions:
        body = card_body(question, database_id=report.database_id, collection_id=report.collection_id)
        found = _find(existing, f"card:{question.key}", question.name, collection_id=report.collection_id)
        outcome: Outcome
        if found is None:
            created = api.call("POST", "/api/card", body)
            card_id, outcome = int(created["id"]), "created"
        else:
            card_id = int(found["id"])
            is_same = (
                found.get("description") == body["description"]
                and found.get("name") == question.name
                and found.get("collection_id") == report.collection_id
                and found.get("display") == question.display
                and _native_query(found) in (None, question.sql)
            )
            outcome = "unchanged" if is_same else "updated"
            if not is_same:
                api.call("PUT", f"/api/card/{card_id}", body)
        report.cards[question.key] = card_id
        report.outcomes.append(("card", question.key, card_id, outcome))
        if question.is_sentinel:
            report.sentinel_card_id = card_id


def _dashboards(api: MetabaseAPI, manifest: Manifest, report: Report) -> None:
    items = _rows(api.call("GET", f"/api/collection/{report.collection_id}/items", params={"models": "dashboard"}))
    refreshed: list[int] = []
    for dashboard in manifest.dashboards:
        fields, dashcards = dashboard_content(dashboard, collection_id=report.collection_id, card_ids=report.cards)
        found = _find([{**item, "archived": item.get("archived", False)} for item in items],
                      f"dashboard:{dashboard.key}", dashboard.name)  # fmt: skip
        outcome: Outcome
        current_cards: list[dict[str, Any]]
        if found is None:
            created = api.call("POST", "/api/dashboard", fields)
            dashboard_id, current_cards, outcome = int(created["id"]), [], "created"
        else:
            dashboard_id = int(found["id"])
            current = api.call("GET", f"/api/dashboard/{dashboard_id}")
            current_cards = current.get("dashcards") or current.get("ordered_cards") or []
            is_same = current.get("description") == fields["description"] and _layout(current_cards) == _layout(
                dashcards
            )
            outcome = "unchanged" if is_same else "updated"
        if outcome != "unchanged":
            reusable = {int(card["card_id"]): int(card["id"]) for card in current_cards if card.get("card_id")}
            placed = [
                {"id": reusable.pop(card["card_id"], -(number + 1)), **card} for number, card in enumerate(dashcards)
            ]
            api.call("PUT", f"/api/dashboard/{dashboard_id}", {**fields, "dashcards": placed})
        report.dashboards[dashboard.key] = dashboard_id
        report.outcomes.append(("dashboard", dashboard.key, dashboard_id, outcome))
        if dashboard.link_name:
            report.links[dashboard.link_name] = f"{report.site_url.rstrip('/')}/dashboard/{dashboard_id}"
        refreshed += [card["card_id"] for card in dashcards if card["card_id"] != report.sentinel_card_id]
    report.refreshed_card_ids = list(dict.fromkeys(refreshed))


def provision(
    manifest: Manifest,
    *,
    url: str,
    credentials: Credentials,
    password: str | None,
    site_url: str | None = None,
    is_setting_password: bool = False,
) -> tuple[Report, list[str]]:
    """Create or update everything `manifest` names; returns the report and the writing calls made."""
    report = Report(url=url, site_url=site_url or url)
    api = MetabaseAPI(url, credentials, secrets=(password,) if password else ())
    try:
        # The database first: a missing password stops the run before anything is written.
        report.database_id = _database(
            api, manifest.warehouse, password, report, is_setting_password=is_setting_password
        )
        report.collection_id = _collection(api, manifest, report)
        _cards(api, manifest, report)
        _dashboards(api, manifest, report)
    finally:
        api.close()
    return report, api.writes


@app.command("provision")
def provision_command(
    url: Annotated[str, typer.Option(envvar="SYNO_METABASE_URL", help="Metabase as this machine reaches it.")] = (
        "http://localhost:3001"
    ),
    site_url: Annotated[
        str | None, typer.Option(envvar="METABASE_SITE_URL", help="Metabase as people reach it (dashboard links).")
    ] = None,
    folder: Annotated[Path, typer.Option(help="The folder holding metabase.yaml and questions/.")] = DEFAULT_FOLDER,
    set_password: Annotated[
        bool, typer.Option("--set-password", help="Send the warehouse password again (after rotating it).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create or update the warehouse connection, questions and dashboards from deploy/metabase/, idempotently.

    Credentials come from the environment only: SYNO_METABASE_API_KEY (or SYNO_METABASE_USERNAME and
    SYNO_METABASE_PASSWORD) for Metabase, and the read-only role's password from PG_READER_PASSWORD
    (or PG_READER_PASSWORD_FILE). Prints the SYNO_ACTIVATION__METABASE__* settings to put in activation.env.
    """
    try:
        manifest = load_manifest(folder)
        password = secret_from_environment(manifest.warehouse.password_variable)
        report, writes = provision(
            manifest,
            url=url,
            credentials=Credentials.from_environment(),
            password=password,
            site_url=site_url,
            is_setting_password=set_password,
        )
    except ProvisionFailed as error:
        err.print(f"[red]metabase provision failed[/]: {error}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.as_json()))
        return
    for kind, key, object_id, outcome in report.outcomes:
        err.print(f"{outcome:<9} {kind} {key} (id {object_id})")
    err.print(f"{len(writes)} writing calls; put these in deploy/env/activation.env:")
    for name, value in report.settings().items():
        typer.echo(f"{name}={value}")
