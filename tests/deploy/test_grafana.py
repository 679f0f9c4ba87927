"""What Grafana queries exists: every dashboard panel and alert rule reads metrics and labels the code emits, and
tables and columns the migrated warehouse has (and that Grafana's read-only role may select).

The metrics come from the code, not from a list here: our own are the ones syno_shared.telemetry declares once the
four apps are built (name, kind, unit, label names; a recording with other labels raises), and FastStream's are
recorded for real by a broker built as the services build it, on a real NATS server, into an in-memory reader.
Both are then named as Prometheus names them when OTLP arrives (grafana/otel-lgtm: dots to underscores, the unit
as a suffix, `_total` on counters, `_bucket`/`_sum`/`_count` on histograms, `job` and `instance` from the
resource). Every SQL query, with Grafana's macros and the dashboards' variables filled in, runs on a PostgreSQL
with every migration applied, as the syno_monitor role Grafana logs in with.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from faststream.nats import NatsBroker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from syno_cli import asyncapi
from syno_shared import access, bus, migrate, telemetry

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERTING = GRAFANA / "provisioning" / "alerting"
RESOURCE_LABELS = frozenset({"job", "instance"})  # what Prometheus makes of service.namespace/name and instance id
UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes"}
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
)


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str
    unit: str
    labels: frozenset[str]


def prometheus_series(instrument: Instrument) -> dict[str, frozenset[str]]:
    """The Prometheus series names (and their label names) an OTLP instrument becomes."""
    name = re.sub(r"[^a-zA-Z0-9_:]", "_", instrument.name)
    unit = re.sub(r"\{[^}]*\}", "", instrument.unit)
    suffix = UNIT_SUFFIXES.get(unit, "ratio" if unit == "1" and instrument.kind == "gauge" else unit)
    suffix = re.sub(r"[^a-zA-Z0-9_]", "_", suffix)
    if suffix and suffix not in name.split("_"):
        name = f"{name}_{suffix}"
    labels = frozenset(re.sub(r"[^a-zA-Z0-9_]", "_", label) for label in instrument.labels) | RESOURCE_LABELS
    if instrument.kind == "counter":
        return {name if name.endswith("_total") else f"{name}_total": labels}
    if instrument.kind == "histogram":
        return {f"{name}_bucket": labels | {"le"}, f"{name}_sum": labels, f"{name}_count": labels}
    return {name: labels}


def faststream_instruments(nats_url: str) -> list[Instrument]:
    """FastStream's own metrics, as its telemetry middleware records them for a handled, a failed and a sent message."""
    reader = InMemoryMetricReader()
    broker = bus.create_broker(nats_url, meter_provider=MeterProvider(metric_readers=[reader]))
    handled = asyncio.Event()

    @broker.subscriber("metrics.check")
    async def handle(body: str) -> None:
        try:
            if body == "fail":
                raise ValueError("a handler error, for the error.type label")
        finally:
            if body == "fail":
                handled.set()

    async def exercise(running: NatsBroker) -> None:
        async with running:
            await running.start()
            await running.publish("ok", "metrics.check")
            await running.publish("fail", "metrics.check")
            await asyncio.wait_for(handled.wait(), 10)
            await asyncio.sleep(0.2)  # the failed message's duration is recorded after the handler raised

    asyncio.run(exercise(broker))
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[tuple[str, str, str], set[str]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = type(metric.data).__name__.lower().replace("sum", "counter")
                labels = found.setdefault((metric.name, kind, metric.unit or ""), set())
                for point in metric.data.data_points:
                    labels.update(point.attributes or {})
    return [Instrument(name, kind, unit, frozenset(labels)) for (name, kind, unit), labels in found.items()]


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, frozenset[str]]:
    """Every Prometheus series the pipeline can emit, with its label names."""
    for service in access.SERVICES:
        asyncapi.service_broker(service)  # builds the app: every instrument of the service is declared
    declared = [
        Instrument(spec.name, spec.kind, spec.unit, frozenset(spec.labels)) for spec in telemetry.DECLARED.values()
    ]
    from syno_shared.embedded import EmbeddedNats  # the test's own server, as the nats_url fixture starts one

    folder = tmp_path_factory.mktemp("metrics-nats")
    server = EmbeddedNats(folder)
    server.start()
    try:
        recorded = faststream_instruments(server.url)
    finally:
        server.stop()
    assert {"messaging.process.duration", "messaging.publish.duration"} <= {instrument.name for instrument in recorded}
    result: dict[str, frozenset[str]] = {}
    for instrument in (*declared, *recorded):
        result.update(prometheus_series(instrument))
    return result


# ---------------------------------------------------------------------------------------------------------------
# PromQL


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


def promql_use(expr: str) -> tuple[list[Selector], set[str]]:
    """The metric selectors of an expression (with the labels each one matches on) and the grouping labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors and subqueries
    grouping: set[str] = set()
    for match in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        grouping.update(label.strip() for label in match.group(1).split(",") if label.strip())
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    selectors = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}", text):
        labels = frozenset(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(2)))
        if match.group(1):
            selectors.append(Selector(match.group(1), labels))
    text = re.sub(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{[^}]*\}", " ", text)
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        if match.group(1) not in PROMQL_WORDS:
            selectors.append(Selector(match.group(1), frozenset()))
    return selectors, grouping


def promql_problems(expr: str, legend: str, series: dict[str, frozenset[str]]) -> list[str]:
    selectors, grouping = promql_use(expr)
    problems = []
    if not selectors:
        problems.append(f"no metric in {expr!r}")
    labels: set[str] = set()
    for selector in selectors:
        if selector.metric not in series:
            problems.append(f"metric {selector.metric} is not emitted")
            continue
        labels |= series[selector.metric]
        if unknown := selector.labels - series[selector.metric]:
            problems.append(f"{selector.metric} has no label {sorted(unknown)}")
    used = grouping | set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend))
    if labels and (unknown := used - labels):
        problems.append(f"{expr!r} groups or names labels its metrics do not have: {sorted(unknown)}")
    return problems


def test_the_checker_finds_the_names_and_labels_that_do_not_exist(series: dict[str, frozenset[str]]) -> None:
    """The two panels the issue found broken, as they were: both are reported; their fixed forms are not."""
    old_duration = 'histogram_quantile(0.95, sum by (le, stage) (rate(syno_stage_seconds_bucket{job=~"syno/.*"}[5m])))'
    old_subjects = 'sum by (messaging_destination_name) (rate(messaging_process_duration_seconds_count{job=~"x"}[5m]))'
    assert promql_problems(old_duration, "{{stage}} p95", series) == ["metric syno_stage_seconds_bucket is not emitted"]
    assert promql_problems(old_subjects, "{{messaging_destination_name}}", series) == [
        f"{old_subjects!r} groups or names labels its metrics do not have: ['messaging_destination_name']"
    ]
    assert promql_problems(old_duration.replace("syno_stage_seconds", "syno_stage_duration_seconds"), "", series) == []
    assert promql_problems(old_subjects.replace("destination_name", "destination_publish_name"), "", series) == []
    assert promql_problems('sum(syno_ingestion_files_total{sheet="x"})', "", series) == [
        "syno_ingestion_files_total has no label ['sheet']"
    ]


def test_every_stage_records_one_duration_by_stage_and_outcome(series: dict[str, frozenset[str]]) -> None:
    assert series["syno_stage_duration_seconds_bucket"] == RESOURCE_LABELS | {"stage", "outcome", "le"}
    assert "syno_stage_seconds_bucket" not in series  # ingestion's own, gone: one instrument for four stages


# ---------------------------------------------------------------------------------------------------------------
# Dashboards and alert rules: what they query


@dataclass(frozen=True)
class Query:
    where: str
    datasource: str
    text: str
    legend: str = ""


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(path: Path) -> list[Query]:
    board = json.loads(path.read_text(encoding="utf-8"))
    queries = []
    for panel in _panels(board["panels"]):
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            text = target.get("expr") or target.get("rawSql") or target.get("query") or ""
            where = f"{path.name} panel {panel['id']} ({panel.get('title')}) {target.get('refId')}"
            queries.append(Query(where, uid, text, target.get("legendFormat", "")))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            uid = variable["datasource"]["uid"]
            queries.append(Query(f"{path.name} variable {variable['name']}", uid, variable["query"]))
    return queries


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((ALERTING / "syno-rules.yaml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rule_queries() -> list[Query]:
    return [
        Query(f"alert rule {rule['uid']} {item['refId']}", item["datasourceUid"], item["model"].get("expr") or "")
        if item["datasourceUid"] == "prometheus"
        else Query(f"alert rule {rule['uid']} {item['refId']}", item["datasourceUid"], item["model"].get("rawSql", ""))
        for rule in alert_rules()
        for item in rule["data"]
        if item["datasourceUid"] != "__expr__"
    ]


ALL_QUERIES = [query for path in DASHBOARDS for query in dashboard_queries(path)] + rule_queries()


def test_dashboards_and_rules_query_only_known_data_sources() -> None:
    assert {path.name for path in DASHBOARDS} == {"syno-forecast-accuracy.json", "syno-pipeline-health.json"}
    assert ALL_QUERIES
    assert {query.datasource for query in ALL_QUERIES} <= {"prometheus", "syno-postgres", "tempo"}


def test_every_promql_query_reads_emitted_metrics_and_labels(series: dict[str, frozenset[str]]) -> None:
    problems = [
        f"{query.where}: {problem}"
        for query in ALL_QUERIES
        if query.datasource == "prometheus"
        for problem in promql_problems(query.text, query.legend, series)
    ]
    assert problems == []


def test_the_trace_panel_finds_the_services_traces() -> None:
    """The Tempo panel filters on the resource namespace setup_telemetry gives every service."""
    tempo = [query for query in ALL_QUERIES if query.datasource == "tempo"]
    provider = telemetry.setup_telemetry("grafana-check", None)
    namespace = provider.tracer_provider.resource.attributes["service.namespace"]
    assert tempo and all(f'resource.service.namespace = "{namespace}"' in query.text for query in tempo)


# ---------------------------------------------------------------------------------------------------------------
# SQL, on a migrated warehouse, as Grafana's role


def grafana_sql(text: str) -> str:
    """The query as Grafana sends it: its macros expanded, the dashboards' variables set to a value."""
    text = re.sub(r"\$__timeFilter\(([^)]*)\)", r"\1 between now() - interval '7 days' and now()", text)
    text = re.sub(r"\$__timeGroupAlias\(([^,]*),[^)]*\)", r"date_trunc('hour', \1) as time", text)
    text = text.replace("$metric", "revenue_usd")  # forecast accuracy: single value, quoted in the query
    return text.replace("($cohort)", "('T1')")  # multi-value: Grafana writes a quoted list


@pytest.fixture(scope="module")
def warehouse(endpoints: Any) -> str:
    from own_databases import new_database

    dsn = new_database(endpoints.pg_dsn, prefix="grafana")
    migrate.apply_migrations(dsn, migrate.installed_sources())
    return dsn


async def _run_as_monitor(dsn: str, sql: str) -> dict[str, str]:
    """Run the query as syno_monitor (read-only, Grafana's role); its result columns and their types."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(f"set local role {access.MONITOR_ROLE}")
            statement = await connection.prepare(sql)
            await statement.fetch()
            return {attribute.name: attribute.type.name for attribute in statement.get_attributes()}
    finally:
        await connection.close()


def test_every_sql_query_runs_as_grafana_on_the_migrated_warehouse(warehouse: str) -> None:
    problems = []
    for query in ALL_QUERIES:
        if query.datasource != "syno-postgres":
            continue
        sql = grafana_sql(query.text)
        assert "$" not in sql, f"{query.where}: a macro or variable left unexpanded: {sql}"
        try:
            asyncio.run(_run_as_monitor(warehouse, sql))
        except asyncpg.PostgresError as error:
            problems.append(f"{query.where}: {type(error).__name__}: {error}")
    assert problems == []


def test_the_checker_finds_a_missing_column(warehouse: str) -> None:
    with pytest.raises(asyncpg.UndefinedColumnError):
        asyncio.run(_run_as_monitor(warehouse, "select trace from ops.stage_runs"))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # a table Grafana's role may not read
        asyncio.run(_run_as_monitor(warehouse, "select count(*) from raw.sales_lines"))


def test_runs_tables_link_each_run_to_its_trace() -> None:
    """The runs tables return trace_id (ops.stage_runs.trace_id) and the run column opens that trace in Tempo."""
    board = json.loads((GRAFANA / "dashboards" / "syno-pipeline-health.json").read_text(encoding="utf-8"))
    linked = []
    for panel in _panels(board["panels"]):
        sql = " ".join(target.get("rawSql", "") for target in panel.get("targets", []))
        if "from ops.stage_runs" not in sql or panel["type"] != "table":
            continue
        assert 'run_id as "run"' in sql and "trace_id" in sql, panel["title"]
        (run,) = [item for item in panel["fieldConfig"]["overrides"] if item["matcher"]["options"] == "run"]
        (link,) = [prop["value"][0] for prop in run["properties"] if prop["id"] == "links"]
        assert link["url"].startswith("/explore?") and "${__data.fields.trace_id}" in link["url"]
        assert "tempo" in link["url"]
        linked.append(panel["title"])
    assert len(linked) == 2


# ---------------------------------------------------------------------------------------------------------------
# Alert rules, contact point, notification policy


def test_the_alert_rules_cover_the_five_situations_and_are_well_formed(warehouse: str) -> None:
    rules = {rule["uid"]: rule for rule in alert_rules()}
    assert set(rules) == {
        "syno-failed-run",
        "syno-stalled-stage",
        "syno-late-workbook",
        "syno-stale-heartbeat",
        "syno-dead-letters",
    }
    for uid, rule in rules.items():
        references = {item["refId"] for item in rule["data"]}
        assert rule["condition"] in references, uid
        for item in rule["data"]:
            if item["datasourceUid"] == "__expr__":
                assert item["model"]["expression"] in references - {item["refId"]}, uid
        # Labels a rule's notifications may carry: its own, and the text columns of its SQL (one alert per row).
        label_names = set(rule["labels"])
        for item in rule["data"]:
            if item["datasourceUid"] == "syno-postgres":
                columns = asyncio.run(_run_as_monitor(warehouse, grafana_sql(item["model"]["rawSql"])))
                assert any(kind in ("float8", "numeric", "int8", "int4") for kind in columns.values()), uid
                label_names |= {name for name, kind in columns.items() if kind == "text"}
        templates = " ".join(rule["annotations"].values())
        assert set(re.findall(r"\$labels\.([a-zA-Z_]+)", templates)) <= label_names, uid
        assert set(re.findall(r"\$values\.([A-Z])", templates)) <= references, uid
        assert rule["labels"]["team"] == "syno" and rule["labels"]["severity"] in ("page", "warning"), uid


def test_every_rule_reaches_the_alerts_contact_point_whose_url_comes_from_the_environment() -> None:
    contact = yaml.safe_load((ALERTING / "syno-contact-points.yaml").read_text(encoding="utf-8"))
    policies = yaml.safe_load((ALERTING / "syno-policies.yaml").read_text(encoding="utf-8"))
    (point,) = contact["contactPoints"]
    assert point["name"] == "syno-alerts"
    (receiver,) = point["receivers"]
    assert re.fullmatch(r"\$[A-Z_]+", receiver["settings"]["url"])  # a placeholder, never a URL in the repository
    (tree,) = policies["policies"]
    routes = tree["routes"]
    assert {tree["receiver"], *(route["receiver"] for route in routes)} == {point["name"]}
    for rule in alert_rules():
        matched = [
            route
            for route in routes
            if all(rule["labels"].get(name) == value for name, operator, value in route["object_matchers"])
        ]
        assert len(matched) == 1, rule["uid"]

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    lgtm = compose["services"]["lgtm"]
    variable = receiver["settings"]["url"].removeprefix("$")
    assert variable in lgtm["environment"]
    assert variable in (ROOT / ".env.example").read_text(encoding="utf-8")
    mounted = {volume.split(":")[0] for volume in lgtm["volumes"]}
    assert {f"./{path.relative_to(ROOT)}" for path in ALERTING.glob("*.yaml")} <= mounted
