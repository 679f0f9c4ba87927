"""A warm, in-process dbt: one dbtRunner per process, invocations serialised.

Importing dbt costs seconds and parsing the project one more; a warm runner pays both once per process.
Each build goes into schemas of its own (the build's name is the dbt var build_schema_prefix, see
dbt/macros/generate_schema_name.sql), and dbt decides a node's schema while parsing, so a changed var
would make dbt parse the whole project again on every build. Instead the project is parsed once with a
placeholder build name (PARSED_BUILD) and each build runs on a copy of that manifest whose nodes name the
build's schemas (`manifest_for_build`, handed to dbtRunner(manifest=...)): no parse at all per build. The
project is parsed again when one of its files or the vars change.

The data tests run on every build (a failure stops publication); dbt's unit tests check the SQL logic,
not the data, so they run in the test suite (tests/transform) and not on every snapshot.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

MARTS_SCHEMA = "marts"  # the schema dbt_project.yml gives the models of models/marts/
BUILD_VARIABLE = "build_schema_prefix"  # the dbt var naming the build's schemas
BUILD_NAME = re.compile(r"^b_[0-9a-f]{12}_[0-9a-f]{8}$")  # the macro's own check, before dbt is asked
PARSED_BUILD = "b_000000000000_00000000"  # the build name the kept manifest is parsed with
PROJECT_FILES = (".sql", ".yml", ".yaml", ".csv", ".md", ".py")
DBT_THREADS = 2  # nodes built side by side: PostgreSQL does the work, dbt mostly waits for it


@dataclass(frozen=True)
class DbtBuild:
    """What one `dbt build` did. marts: the table of each model of models/marts/ it built, all in marts_schema
    (the build's own marts schema, e.g. 'b_0123456789ab_cdef0123_marts')."""

    is_success: bool
    invocation_id: str
    models_built: list[str]
    marts: list[str]
    marts_schema: str
    tests_passed: int
    tests_warned: int
    tests_failed: int
    failed_nodes: list[str]
    error: str | None
    seconds: float


def dbt_environment(pg_dsn: str, threads: int = 1) -> dict[str, str]:
    """SYNO_DBT_* variables read by dbt/profiles.yml, from the one SYNO_PG_DSN."""
    url = urlparse(pg_dsn)
    query = parse_qs(url.query)
    host = query.get("host", [url.hostname or "localhost"])[0]
    return {
        "SYNO_DBT_HOST": host,
        "SYNO_DBT_PORT": str(url.port or query.get("port", ["5432"])[0]),
        "SYNO_DBT_USER": unquote(url.username or "postgres"),
        "SYNO_DBT_PASSWORD": unquote(url.password or ""),
        "SYNO_DBT_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "SYNO_DBT_THREADS": str(threads),
    }


def project_fingerprint(project_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of every project file dbt parses: a change means the kept manifest is stale."""
    found = []
    for directory, folders, files in os.walk(project_dir):
        folders[:] = sorted(f for f in folders if f not in ("target", "logs", "dbt_packages") and f[0] != ".")
        for name in sorted(files):
            if name.endswith(PROJECT_FILES):
                path = Path(directory) / name
                status = path.stat()
                found.append((str(path), status.st_size, status.st_mtime_ns))
    return tuple(found)


def manifest_for_build(manifest: Any, build_id: str) -> Any:
    """A copy of a manifest parsed for PARSED_BUILD whose nodes are built in `build_id`'s schemas. Nodes and unit
    tests are copied (a build writes its compiled SQL on them); everything else is shared with the original."""

    def moved(node: Any) -> Any:
        node = copy.deepcopy(node)
        if str(node.schema).startswith(f"{PARSED_BUILD}_"):
            node.schema = build_id + str(node.schema)[len(PARSED_BUILD) :]
        if getattr(node, "relation_name", None):
            node.relation_name = node.relation_name.replace(f'"{PARSED_BUILD}_', f'"{build_id}_')
        return node

    built = dataclasses.replace(
        manifest,
        nodes={unique_id: moved(node) for unique_id, node in manifest.nodes.items()},
        unit_tests={unique_id: moved(node) for unique_id, node in manifest.unit_tests.items()},
        flat_graph={},
    )
    built.build_flat_graph()
    return built


@dataclass
class WarmDbt:
    project_dir: Path
    target_path: Path
    pg_dsn: str
    threads: int = DBT_THREADS
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runner: Any = None
    parses: int = 0  # times the project was parsed for builds (once per process unless the project changes)
    _parsed: tuple[Any, Any] | None = None  # (project fingerprint and vars, manifest parsed for PARSED_BUILD)

    def _get_runner(self) -> Any:
        if self._runner is None:
            from dbt.cli.main import dbtRunner  # seconds to import: once per process

            self._runner = dbtRunner()
        return self._runner

    def warm_up(self, variables: dict[str, Any]) -> None:
        """Import dbt and parse the project now, so the first event pays neither."""
        self.parsed_manifest(variables)

    def parsed_manifest(self, variables: dict[str, Any]) -> Any | None:
        """The project parsed for PARSED_BUILD with these vars, parsed again only when a project file or the vars
        changed; None when the project does not parse (the build then reports dbt's own error)."""
        key = (project_fingerprint(self.project_dir), json.dumps(variables, sort_keys=True))
        if self._parsed is None or self._parsed[0] != key:
            self._parsed = None
            parse_variables = {**variables, BUILD_VARIABLE: PARSED_BUILD}
            result = self.invoke(["parse", "--vars", json.dumps(parse_variables, sort_keys=True)])
            self.parses += 1
            if not result.success or result.result is None:
                return None
            self._parsed = (key, result.result)
        return self._parsed[1]

    def invoke(self, args: list[str], manifest: Any = None) -> Any:
        """One dbt command; on `manifest` (no parse) when one is given."""
        with self._lock:  # dbt invocations in one process must not run concurrently
            os.environ.update(dbt_environment(self.pg_dsn, self.threads))
            self.target_path.mkdir(parents=True, exist_ok=True)
            common = [
                "--project-dir",
                str(self.project_dir),
                "--profiles-dir",
                str(self.project_dir),
                "--target-path",
                str(self.target_path),
                "--log-path",
                str(self.target_path / "logs"),
            ]
            runner = self._get_runner()
            if manifest is not None:
                runner = type(runner)(manifest=manifest)
            return runner.invoke([*args, *common, "--quiet", "--no-use-colors"])

    def build(self, snapshot_id: str, variables: dict[str, Any], build_id: str | None = None) -> DbtBuild:
        """`dbt build` of one snapshot, into the schemas of `build_id` (plain staging/intermediate/marts without one).

        The snapshot goes in SYNO_DBT_SNAPSHOT_ID, the build in --vars and in the nodes of the kept manifest
        (manifest_for_build). A model built anywhere else than the build's schemas fails the build: a stale
        parse must never write over another build's tables."""
        if build_id is not None and not BUILD_NAME.match(build_id):
            return refused_build(build_id)
        os.environ["SYNO_DBT_SNAPSHOT_ID"] = snapshot_id
        build_variables = {**variables, BUILD_VARIABLE: build_id} if build_id else variables
        manifest = None
        if build_id is not None and (parsed := self.parsed_manifest(variables)) is not None:
            manifest = manifest_for_build(parsed, build_id)
        arguments = [
            "build",
            "--vars",
            json.dumps(build_variables, sort_keys=True),
            "--exclude-resource-type",
            "unit_test",
        ]
        result = self.invoke(arguments, manifest)
        run_results = getattr(result, "result", None)
        nodes = list(getattr(run_results, "results", None) or [])
        marts_schema = f"{build_id}_{MARTS_SCHEMA}" if build_id else MARTS_SCHEMA
        models, marts, passed, warned, failed, failed_nodes, strays = [], [], 0, 0, 0, [], []
        for node_result in nodes:
            node = node_result.node
            status = str(node_result.status)
            if node.resource_type in ("model", "seed", "snapshot"):
                if build_id and not str(node.schema).startswith(f"{build_id}_"):
                    strays.append(f"{node.unique_id} in {node.schema}")
                if status == "success":
                    models.append(node.unique_id)
                    if node.resource_type == "model" and node.schema == marts_schema:
                        marts.append(str(node.alias))
            elif node.resource_type in ("test", "unit_test"):
                if status == "pass":
                    passed += 1
                elif status == "warn":
                    warned += 1
                elif status in ("fail", "error"):
                    failed += 1
            if status in ("fail", "error"):
                failed_nodes.append(node.unique_id)
        invocation_id = ""
        if run_results is not None and getattr(run_results, "args", None) is not None:
            invocation_id = str(getattr(run_results, "args", {}).get("invocation_id", ""))
        if not invocation_id:
            from dbt_common.invocation import get_invocation_id

            invocation_id = get_invocation_id()
        error = str(result.exception) if getattr(result, "exception", None) else None
        if not nodes and error is None:
            error = "dbt build selected no nodes"  # a selection that matches nothing 'succeeds'
        if strays and error is None:
            error = f"dbt built outside the build's schemas ({build_id}_*): " + ", ".join(strays[:5])
        return DbtBuild(
            is_success=bool(result.success) and not failed_nodes and error is None,
            invocation_id=invocation_id,
            models_built=models,
            marts=sorted(marts),
            marts_schema=marts_schema,
            tests_passed=passed,
            tests_warned=warned,
            tests_failed=failed,
            failed_nodes=failed_nodes,
            error=error,
            seconds=float(getattr(run_results, "elapsed_time", 0.0) or 0.0),
        )


def refused_build(build_id: str) -> DbtBuild:
    """A build name that is not one (the macro refuses it too): nothing is asked of dbt."""
    return DbtBuild(
        is_success=False,
        invocation_id="",
        models_built=[],
        marts=[],
        marts_schema="",
        tests_passed=0,
        tests_warned=0,
        tests_failed=0,
        failed_nodes=[],
        error=f"build_schema_prefix must look like b_<12 hex>_<8 hex>, got {build_id!r}",
        seconds=0.0,
    )
