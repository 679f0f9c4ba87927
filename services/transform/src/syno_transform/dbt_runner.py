"""A warm, in-process dbt: one dbtRunner per process, invocations serialised.

Importing dbt costs seconds; keeping the runner between events pays that once per process. Each build
goes into schemas of its own (the build's name is a dbt var, see dbt/macros/generate_schema_name.sql), so
dbt parses the project again for every build (about a second); the import is what the warm runner saves.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

MARTS_SCHEMA = "marts"  # the schema dbt_project.yml gives the models of models/marts/
BUILD_VARIABLE = "build_schema_prefix"  # the dbt var naming the build's schemas


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


@dataclass
class WarmDbt:
    project_dir: Path
    target_path: Path
    pg_dsn: str
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runner: Any = None

    def _get_runner(self) -> Any:
        if self._runner is None:
            from dbt.cli.main import dbtRunner  # seconds to import: once per process

            self._runner = dbtRunner()
        return self._runner

    def warm_up(self, variables: dict[str, Any]) -> None:
        """Import dbt and parse the project now, so the first event does not pay the import (each build parses
        again: its schemas are a var)."""
        self.invoke(["parse", "--vars", json.dumps(variables, sort_keys=True)])

    def invoke(self, args: list[str]) -> Any:
        with self._lock:  # dbt invocations in one process must not run concurrently
            os.environ.update(dbt_environment(self.pg_dsn))
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
            return self._get_runner().invoke([*args, *common, "--quiet", "--no-use-colors"])

    def build(self, snapshot_id: str, variables: dict[str, Any], build_id: str | None = None) -> DbtBuild:
        """`dbt build` of one snapshot, into the schemas of `build_id` (plain staging/intermediate/marts without one).

        The snapshot goes in SYNO_DBT_SNAPSHOT_ID, the build in --vars. A model built anywhere else than the
        build's schemas fails the build: a stale parse must never write over another build's tables."""
        os.environ["SYNO_DBT_SNAPSHOT_ID"] = snapshot_id
        build_variables = {**variables, BUILD_VARIABLE: build_id} if build_id else variables
        result = self.invoke(["build", "--vars", json.dumps(build_variables, sort_keys=True)])
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
