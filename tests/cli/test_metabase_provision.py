"""`syno metabase provision`: Metabase as code, against a local Metabase stand-in that keeps what it is sent and
checks the request shapes of the documented endpoints; and every question's SQL run as the read-only role
syno_reader against a real PostgreSQL holding marts the project's dbt built, published as the transform does."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from syno_cli import metabase
from syno_shared import access, migrate, provision
from syno_shared.embedded import Endpoints

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "deploy" / "metabase"
API_KEY = "mb_admin_KEY_" + "k" * 20
READER_PASSWORD = "reader-" + "p" * 20
REDACTED = "**MetabasePass**"  # what Metabase shows instead of a stored password


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeMetabase:
    """Collections, databases, cards and dashboards kept in memory, behind the endpoints provisioning uses.
    A request whose shape the documented API would refuse is answered 400, so the test fails."""

    calls: list[Call] = field(default_factory=list)
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [(call.method, call.path) for call in self.calls if call.method != "GET"]

    def handle(self, call: Call, headers: dict[str, str]) -> tuple[int, Any]:
        self.calls.append(call)
        if headers.get("x-api-key") != API_KEY:
            return 401, "Unauthenticated"
        parts = call.path.strip("/").split("/")[1:]  # after "api"
        handler = getattr(self, f"{call.method.lower()}_{parts[0]}", None)
        if handler is None:
            return 404, "API endpoint does not exist."
        return handler(parts[1:], call)  # type: ignore[no-any-return]  # each handler returns (status, body)

    # collections
    def get_collection(self, rest: list[str], call: Call) -> tuple[int, Any]:
        if not rest:
            return 200, [{"id": "root", "name": "Our analytics"}, *self.collections.values()]
        collection_id = int(rest[0])
        assert rest[1:] == ["items"] and call.query["models"] == ["dashboard"]
        items = [
            {"id": d["id"], "name": d["name"], "description": d["description"], "model": "dashboard"}
            for d in self.dashboards.values()
            if d["collection_id"] == collection_id
        ]
        return 200, {"data": items, "total": len(items)}

    def post_collection(self, rest: list[str], call: Call) -> tuple[int, Any]:
        if not isinstance(call.body.get("name"), str):
            return 400, {"errors": {"name": "value must be a non-blank string."}}
        new = {"id": next(self.ids), "personal_owner_id": None, "archived": False, **call.body}
        self.collections[new["id"]] = new
        return 200, new

    def put_collection(self, rest: list[str], call: Call) -> tuple[int, Any]:
        self.collections[int(rest[0])].update(call.body)
        return 200, self.collections[int(rest[0])]

    # databases
    def get_database(self, rest: list[str], call: Call) -> tuple[int, Any]:
        shown = [{**d, "details": {**d["details"], "password": REDACTED}} for d in self.databases.values()]
        return 200, {"data": shown, "total": len(shown)}

    def post_database(self, rest: list[str], call: Call) -> tuple[int, Any]:
        body = call.body
        if body.get("engine") != "postgres" or not body.get("details", {}).get("password"):
            return 400, {"errors": {"details": "engine and details with a password are required"}}
        new = {"id": next(self.ids), **body}
        self.databases[new["id"]] = new
        return 200, new

    def put_database(self, rest: list[str], call: Call) -> tuple[int, Any]:
        database = self.databases[int(rest[0])]
        details = {**database["details"], **call.body.get("details", {})}
        database.update({**call.body, "details": details})
        return 200, database

    # cards
    def get_card(self, rest: list[str], call: Call) -> tuple[int, Any]:
        assert not rest and call.query == {"f": ["all"]}
        return 200, list(self.cards.values())

    def _card_errors(self, body: dict[str, Any]) -> dict[str, str]:
        query = body.get("dataset_query") or {}
        errors = {}
        if query.get("type") != "native" or query.get("database") not in self.databases:
            errors["dataset_query"] = "a native query on a known database"
        if not isinstance(query.get("native", {}).get("query"), str):
            errors["native"] = "query must be a string"
        for name, tag in query.get("native", {}).get("template-tags", {}).items():
            if tag.get("name") != name or not tag.get("id") or tag.get("type") not in ("number", "text", "date"):
                errors["template-tags"] = f"bad template tag {name}"
        if body.get("display") not in ("table", "bar", "line", "scalar", "row", "pie"):
            errors["display"] = "unknown display"
        settings = body.get("visualization_settings")
        if body.get("collection_id") not in self.collections or not isinstance(settings, dict):
            errors["collection_id"] = "a collection and visualization settings are required"
        return errors

    def post_card(self, rest: list[str], call: Call) -> tuple[int, Any]:
        errors = self._card_errors(call.body)
        if errors:
            return 400, {"errors": errors}
        new = {"id": next(self.ids), "archived": False, **call.body}
        self.cards[new["id"]] = new
        return 200, new

    def put_card(self, rest: list[str], call: Call) -> tuple[int, Any]:
        errors = self._card_errors(call.body)
        if errors:
            return 400, {"errors": errors}
        self.cards[int(rest[0])].update(call.body)
        return 200, self.cards[int(rest[0])]

    # dashboards
    def get_dashboard(self, rest: list[str], call: Call) -> tuple[int, Any]:
        return 200, self.dashboards[int(rest[0])]

    def post_dashboard(self, rest: list[str], call: Call) -> tuple[int, Any]:
        if "dashcards" in call.body or call.body.get("collection_id") not in self.collections:
            return 400, {"errors": {"body": "POST /api/dashboard takes no dashcards, and a collection"}}
        new = {"id": next(self.ids), "dashcards": [], "archived": False, **call.body}
        self.dashboards[new["id"]] = new
        return 200, new

    def put_dashboard(self, rest: list[str], call: Call) -> tuple[int, Any]:
        dashboard = self.dashboards[int(rest[0])]
        body = call.body
        slugs = {parameter["id"] for parameter in body.get("parameters", dashboard.get("parameters", []))}
        current = {dashcard["id"] for dashcard in dashboard["dashcards"]}
        placed = []
        for dashcard in body.get("dashcards", dashboard["dashcards"]):
            shape_ok = (
                isinstance(dashcard["id"], int)
                and (dashcard["id"] < 0 or dashcard["id"] in current)
                and dashcard["card_id"] in self.cards
                and dashcard["size_x"] > 0
                and dashcard["size_y"] > 0
                and dashcard["row"] >= 0
                and 0 <= dashcard["col"] < 24
                and all(m["parameter_id"] in slugs for m in dashcard.get("parameter_mappings", []))
            )
            if not shape_ok:
                return 400, {"errors": {"dashcards": f"bad dashcard {dashcard}"}}
            placed.append({**dashcard, "id": dashcard["id"] if dashcard["id"] > 0 else next(self.ids)})
        dashboard.update({**body, "dashcards": placed})
        return 200, dashboard


@pytest.fixture
def fake_metabase() -> Iterator[tuple[FakeMetabase, str]]:
    fake = FakeMetabase()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            parts = urlsplit(self.path)
            call = Call(self.command, parts.path, parse_qs(parts.query), json.loads(raw) if raw else None)
            with lock:
                status, body = fake.handle(call, {k.lower(): v for k, v in self.headers.items()})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = answer  # noqa: N815  # the names http.server dispatches to

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(folder: Path, url: str, **options: Any) -> tuple[metabase.Report, list[str]]:
    manifest = metabase.load_manifest(folder, {"POSTGRES_DB": "syno"})
    return metabase.provision(
        manifest, url=url, credentials=metabase.Credentials(api_key=API_KEY), password=READER_PASSWORD, **options
    )


def test_first_run_creates_everything_and_prints_the_activation_settings(
    fake_metabase: tuple[FakeMetabase, str],
) -> None:
    fake, url = fake_metabase
    report, writes = run(FOLDER, url, site_url="https://bi.example.com")

    manifest = metabase.load_manifest(FOLDER, {})
    questions = {question.key: question for question in manifest.questions}
    assert [(kind, outcome) for kind, _, _, outcome in report.outcomes] == [
        ("database", "created"),
        ("collection", "created"),
        *[("card", "created")] * len(manifest.questions),
        *[("dashboard", "created")] * len(manifest.dashboards),
    ]
    # Creating a dashboard is a POST, then its cards in one PUT.
    assert sorted(writes) == sorted(
        ["POST /api/database", "POST /api/collection"]
        + ["POST /api/card"] * len(manifest.questions)
        + ["POST /api/dashboard"] * len(manifest.dashboards)
        + [f"PUT /api/dashboard/{dashboard_id}" for dashboard_id in report.dashboards.values()]
    )
    [database] = fake.databases.values()
    assert database["details"] == {
        "host": "postgres",
        "port": 5432,
        "dbname": "syno",
        "user": access.READER_ROLE,
        "password": READER_PASSWORD,
        "ssl": False,
        "schema-filters-type": "inclusion",
        "schema-filters-patterns": "marts,forecast,activation",
    }
    sentinel = report.cards["published_snapshot"]
    assert fake.cards[sentinel]["dataset_query"]["native"]["query"] == questions["published_snapshot"].sql
    opportunities = fake.dashboards[report.dashboards["opportunities"]]
    assert opportunities["parameters"] == [{"id": "rank", "name": "Rank", "slug": "rank", "type": "number/="}]
    rank = ["variable", ["template-tag", "rank"]]
    listed, accounts = report.cards["opportunities"], report.cards["opportunity_accounts"]
    assert [(d["card_id"], d["parameter_mappings"]) for d in opportunities["dashcards"]] == [
        (sentinel, []),
        (listed, [{"parameter_id": "rank", "card_id": listed, "target": rank}]),
        (accounts, [{"parameter_id": "rank", "card_id": accounts, "target": rank}]),
        (report.cards["narratives"], []),
    ]
    on_dashboards = {d["card_id"] for dashboard in fake.dashboards.values() for d in dashboard["dashcards"]}
    assert report.settings() == {
        "SYNO_ACTIVATION__METABASE__DATABASE_ID": str(database["id"]),
        "SYNO_ACTIVATION__METABASE__DASHBOARD_IDS": json.dumps(sorted(fake.dashboards)),
        "SYNO_ACTIVATION__METABASE__CARD_IDS": json.dumps(report.refreshed_card_ids),
        "SYNO_ACTIVATION__METABASE__SENTINEL_CARD_ID": str(sentinel),
        "SYNO_ACTIVATION__DASHBOARD_LINKS": json.dumps(
            {"opportunities": f"https://bi.example.com/dashboard/{report.dashboards['opportunities']}"}
        ),
    }
    assert sorted(report.refreshed_card_ids) == sorted(on_dashboards - {sentinel})


def test_a_second_run_writes_nothing_and_finds_the_same_ids(fake_metabase: tuple[FakeMetabase, str]) -> None:
    fake, url = fake_metabase
    first, _ = run(FOLDER, url)
    stored = json.dumps([fake.collections, fake.databases, fake.cards, fake.dashboards], sort_keys=True)
    fake.calls.clear()

    second, writes = run(FOLDER, url)

    assert writes == [] and fake.writes == []
    assert {outcome for _, _, _, outcome in second.outcomes} == {"unchanged"}
    assert second.settings() == first.settings()
    assert json.dumps([fake.collections, fake.databases, fake.cards, fake.dashboards], sort_keys=True) == stored


def test_a_changed_question_file_updates_exactly_that_card(
    fake_metabase: tuple[FakeMetabase, str], tmp_path: Path
) -> None:
    fake, url = fake_metabase
    folder = tmp_path / "metabase"
    shutil.copytree(FOLDER, folder)
    first, _ = run(folder, url)
    fake.calls.clear()
    question = folder / "questions" / "c2_revenue_by_quarter.sql"
    question.write_text(question.read_text().replace("order by quarter, c2_service_family", "order by quarter desc"))

    second, writes = run(folder, url)

    card_id = first.cards["c2_revenue_by_quarter"]
    assert writes == [f"PUT /api/card/{card_id}"] and fake.writes == [("PUT", f"/api/card/{card_id}")]
    assert "order by quarter desc" in fake.cards[card_id]["dataset_query"]["native"]["query"]
    assert [(key, outcome) for kind, key, _, outcome in second.outcomes if outcome != "unchanged"] == [
        ("c2_revenue_by_quarter", "updated")
    ]
    assert second.settings() == first.settings()


def test_a_hand_edited_dashboard_is_put_back_and_a_rotated_password_is_sent_on_request(
    fake_metabase: tuple[FakeMetabase, str],
) -> None:
    fake, url = fake_metabase
    first, _ = run(FOLDER, url)
    dashboard_id = first.dashboards["c2_adoption"]
    fake.dashboards[dashboard_id]["dashcards"].pop()  # someone removed a card in the UI
    fake.calls.clear()

    _, writes = run(FOLDER, url)
    assert writes == [f"PUT /api/dashboard/{dashboard_id}"]
    assert len(fake.dashboards[dashboard_id]["dashcards"]) == 3

    fake.calls.clear()
    _, writes = run(FOLDER, url, is_setting_password=True)
    [database_id] = fake.databases
    assert writes == [f"PUT /api/database/{database_id}"]
    [put] = [call for call in fake.calls if call.method == "PUT"]
    assert put.body["details"]["password"] == READER_PASSWORD


def test_the_command_prints_settings_never_secrets_and_names_a_missing_password(
    fake_metabase: tuple[FakeMetabase, str],
) -> None:
    fake, url = fake_metabase
    env = {**os.environ, "SYNO_METABASE_URL": url, "SYNO_METABASE_API_KEY": API_KEY}
    env.pop("PG_READER_PASSWORD", None)
    command = [sys.executable, "-m", "syno_cli", "metabase", "provision", "--folder", str(FOLDER)]

    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1
    assert "PG_READER_PASSWORD is not set" in missing.stderr
    assert fake.writes == []  # stopped before writing anything

    done = subprocess.run(
        [*command, "--json"], env={**env, "PG_READER_PASSWORD": READER_PASSWORD},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    sentinel = report["settings"]["SYNO_ACTIVATION__METABASE__SENTINEL_CARD_ID"]
    assert sentinel == str(report["cards"]["published_snapshot"])
    for secret in (API_KEY, READER_PASSWORD):
        assert secret not in done.stdout + done.stderr + missing.stdout + missing.stderr

    plain = subprocess.run(
        command, env={**env, "PG_READER_PASSWORD": READER_PASSWORD}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == [f"{name}={value}" for name, value in report["settings"].items()]
    assert "0 writing calls" in plain.stderr


# --- the SQL against a real warehouse, as syno_reader ----------------------------------------------------------

sys.path.insert(0, str(REPO / "tests" / "activation"))  # the dbt-built snapshot the activation tests use
import activation_marts  # noqa: E402  # after its folder is on the path

HEX_SNAPSHOT = hashlib.sha256(activation_marts.SNAPSHOT_ID.encode()).hexdigest()


def renew_grants(dsn: str) -> None:
    """What every migration run ends with: the post-apply hook's grants (yoyo runs it only after a migration)."""
    from yoyo import get_backend, read_migrations  # type: ignore[import-untyped]  # yoyo ships no types

    backend = get_backend(migrate.yoyo_uri(dsn))
    try:
        with backend.lock():
            backend.run_post_apply(read_migrations(*(source.directory for source in migrate.installed_sources())))
    finally:
        backend.connection.close()


async def publish_as_the_transform(dsn: str) -> str:
    """The set-aside marts become a build's schema owned by syno_transform, and syno_transform points the stable
    names at it with the transform's own publication code (so syno_reader reads them by the default privileges
    the migrations set, as in production); the forecasts and a storyline carry a real (sha256) snapshot id."""
    from syno_transform.publication import point_stable_names
    from syno_transform.snapshots import build_schema, new_build_id

    build = build_schema(new_build_id(HEX_SNAPSHOT))
    transform = access.pg_role("transform")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'alter schema {activation_marts.SNAPSHOT_MARTS} rename to "{build}"')
        await connection.execute(f'alter schema "{build}" owner to {transform}')
        marts = [
            row["table_name"]
            for row in await connection.fetch(
                "select table_name from information_schema.tables where table_schema = $1", build
            )
        ]
        for table in marts:
            await connection.execute(f'alter table "{build}".{table} owner to {transform}')
        for table in activation_marts.MART_TABLES:  # the empty stand-ins under the stable names
            await connection.execute(f"drop table marts.{table}")
        renew_grants(dsn)  # on the new marts schema, as the next migration run does
        async with connection.transaction():
            await connection.execute(f"set local role {transform}")
            await point_stable_names(connection, marts_schema=build, marts=marts, previous_marts=())
        for table in ("svr_rm", "c2", "sellout"):
            await connection.execute(f"update forecast.{table} set snapshot_id = $1", HEX_SNAPSHOT)
        await connection.execute(
            "insert into activation.storylines (snapshot_id, quarter, region, segment, lever, activation_score,"
            " recommended_action, confidence_note, is_current_quarter, opportunity_rank, customers, usd_at_stake,"
            " confidence, accounts, region_narrative, customer_narratives) values ($1, '2025-07-01', 'FR',"
            " 'SVR-RM buyer', 'win_back', 100, 'Call Beta', 'lost revenue', true, 1, 1, 20000, 'high', $2, 'FR fell',"
            " 'Beta: -40%')",
            HEX_SNAPSHOT,
            json.dumps([{"customer": "Beta", "country": "France", "last_order_quarter": "2025-07-01",
                         "revenue_usd": 30000.0, "usd_at_stake": 20000.0, "buys": "SVR-RM"}]),
        )  # fmt: skip
        return build
    finally:
        await connection.close()


def test_every_question_runs_as_the_read_only_role_on_built_marts(endpoints: Endpoints, tmp_path: Path) -> None:
    name = activation_marts.build_marts_database(endpoints.pg_dsn, tmp_path / "dbt-target")
    dsn = activation_marts.database_dsn(endpoints.pg_dsn, name)
    asyncio.run(publish_as_the_transform(dsn))
    password = secrets.token_urlsafe(16)
    provision.provision_roles(endpoints.pg_dsn, {access.READER_ROLE: password})
    reader_dsn = access.with_credentials(dsn, access.READER_ROLE, password)
    manifest = metabase.load_manifest(FOLDER, {})

    async def run_all() -> dict[str, list[asyncpg.Record]]:
        connection = await asyncpg.connect(reader_dsn)
        try:
            results = {}
            for question in manifest.questions:
                results[question.key] = await connection.fetch(metabase.sql_as_run(question.sql))
                if question.parameters:  # with the filter set, too
                    values = {parameter.name: "1" for parameter in question.parameters}
                    results[f"{question.key}?filtered"] = await connection.fetch(
                        metabase.sql_as_run(question.sql, values)
                    )
            with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the role really is the read-only one
                await connection.fetch("select * from ops.published_snapshot")
            return results
        finally:
            await connection.close()

    results = asyncio.run(run_all())

    assert [dict(row) for row in results["published_snapshot"]] == [
        {"snapshot_id": HEX_SNAPSHOT, "latest_quarter": activation_marts.Q3}
    ]
    [freshness] = results["data_freshness"]
    assert (freshness["snapshot_id"], freshness["published_build"], freshness["storylines"]) == (
        HEX_SNAPSHOT, HEX_SNAPSHOT[:12], 1
    )  # fmt: skip
    assert {row["tier"] for row in results["svr_rm_forecast_by_tier"]} == {"T1"}  # the overall cohort only
    assert [(row["rank"], row["customer"]) for row in results["opportunity_accounts?filtered"]] == [(1, "Beta")]
    assert [row["rank"] for row in results["opportunities"]] == [1]
    assert len(results["c2_adoption_scorecard"]) == len(activation_marts.C2_SCORECARD_ROWS)
    assert all(results[question.key] for question in manifest.questions), {
        key: len(rows) for key, rows in results.items()
    }


def test_the_sql_as_run_drops_an_unset_filter_and_fills_a_set_one() -> None:
    sql = "select 1 where true [[and rank = {{rank}}]] [[and x = {{x}} and y = {{y}}]]"
    assert metabase.sql_as_run(sql) == "select 1 where true  "
    assert metabase.sql_as_run(sql, {"rank": "3", "x": "1"}) == "select 1 where true and rank = 3 "
    [opportunities] = [q for q in metabase.load_manifest(FOLDER, {}).questions if q.key == "opportunities"]
    assert metabase.template_tags(opportunities) == metabase.template_tags(opportunities)  # the same every run
    assert uuid.UUID(metabase.template_tags(opportunities)["rank"]["id"]).version == 5
