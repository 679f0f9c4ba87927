"""The compose deployment files hang together: every service is built and wired the same way, no
credential is written into the repository, each container gets only its own credentials and runs
hardened, the NATS configuration is the one the tests run with, and the Grafana provisioning is loadable.

No Docker engine runs here, so these are static checks of compose.yaml (against the Compose
Specification's JSON schema, vendored in compose-spec.json), deploy/ and .env.example; the NATS
configuration is loaded by the real nats-server binary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from syno_activation.settings import ActivationSettings
from syno_forecast.settings import ForecastSettings
from syno_ingestion.settings import IngestionSettings
from syno_shared import access
from syno_shared.embedded import nats_server_binary
from syno_transform.settings import TransformSettings

SERVICE_SETTINGS: tuple[type[BaseModel], ...] = (
    IngestionSettings,
    TransformSettings,
    ForecastSettings,
    ActivationSettings,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
GRAFANA = ROOT / "deploy" / "grafana"
SERVICES = sorted(path.parent.name for path in (ROOT / "services").glob("*/pyproject.toml"))
BUILT_IN_DATASOURCES = {"prometheus", "tempo", "loki"}  # provisioned by grafana/otel-lgtm itself
ENV_EXAMPLES = (ROOT / ".env.example", *sorted((ROOT / "deploy" / "env").glob("*.env.example")))
SECRET_NAME = re.compile(r"PASSWORD|PASS$|KEY|TOKEN|SECRET", re.IGNORECASE)
INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*([:?+-].*)?\}$")  # the whole value is one ${...}
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {str(key): "" if value is None else str(value) for key, value in environment.items()}


def _strings(node: Any) -> list[str]:
    """Every key and scalar of a parsed YAML document, as text (comments are not part of it)."""
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (str(key), *_strings(value))]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    return [] if node is None else [str(node)]


def test_every_service_package_is_a_compose_service_built_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    """services/<name> -> compose service <name>: deploy/Dockerfile with SERVICE=<name>, context the repo root."""
    assert SERVICES == ["activation", "forecast", "ingestion", "transform"]
    for name in SERVICES:
        service = compose["services"][name]
        assert service["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile", "args": {"SERVICE": name}}


def test_pipeline_services_wait_for_healthy_nats_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("nats", "postgres"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["nats"] == {"condition": "service_healthy"}, name
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name


def test_pipeline_services_point_at_the_containers_and_the_share(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        environment = _environment(service)
        assert environment["SYNO_NATS_URL"] == "nats://nats:4222", name
        assert "@postgres:5432/" in environment["SYNO_PG_DSN"], name
        assert environment["SYNO_DATA_DIR"] == "/data", name
        assert environment["SYNO_OTLP_ENDPOINT"] == "http://lgtm:4318", name
        assert any(str(volume).endswith(":/data") for volume in service["volumes"]), name
        assert not str(service.get("user", "")).startswith(("0:", "root")), name
    transform = _environment(compose["services"]["transform"])
    assert transform["SYNO_TRANSFORM__DBT_PROJECT_DIR"] == "/app/dbt"
    assert transform["SYNO_TRANSFORM__DBT_TARGET_PATH"]


def test_no_literal_secrets_in_compose(compose: dict[str, Any]) -> None:
    """Values of *PASSWORD*/*KEY*/*TOKEN*/*SECRET* variables, and passwords inside URLs, are ${...} interpolations."""
    offenders = []
    for name, service in compose["services"].items():
        build_args = (service.get("build") or {}).get("args", {})
        settings = {**_environment(service), **{str(key): str(value) for key, value in build_args.items()}}
        for key, value in settings.items():
            if SECRET_NAME.search(key) and not INTERPOLATION.match(value):
                offenders.append(f"{name}.{key}")
            match = URL_PASSWORD.search(value)
            if match and not match.group("password").startswith("${"):
                offenders.append(f"{name}.{key} (password in URL)")
    assert offenders == []


def test_env_example_lists_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    used = set(VARIABLE.findall("\n".join(_strings(compose))))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert used - listed == set()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, flags=re.MULTILINE), "the example must not carry a password"
    assert re.findall(r"^[A-Z_]*PASSWORD=.+$", example, flags=re.MULTILINE) == []


# Variables named SYNO_* that only compose reads (interpolation), not the services' settings.
COMPOSE_ONLY = {
    "SYNO_SHARE",
    "SYNO_UID",
    "SYNO_GID",
    "SYNO_BIND_ADDRESS",
    "SYNO_IMAGE_TAG",
    "SYNO_CONTAINER_MAPPING_DIR",
}


def _is_setting(variable: str) -> bool:
    """SYNO_A__B__C names a field of some service's settings (nested groups split on a double underscore)."""
    return any(_names_field(model, variable) for model in SERVICE_SETTINGS)


def _names_field(model: type[BaseModel], variable: str) -> bool:
    *groups, leaf = variable.removeprefix("SYNO_").lower().split("__")
    for group in groups:
        annotation = model.model_fields[group].annotation if group in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return leaf in model.model_fields


def test_syno_variables_name_real_settings(compose: dict[str, Any]) -> None:
    """Every SYNO_* variable given to a container or listed in .env.example is one the services read."""
    given = {key for name in SERVICES for key in _environment(compose["services"][name]) if key.startswith("SYNO_")}
    examples = "\n".join(path.read_text(encoding="utf-8") for path in ENV_EXAMPLES)
    listed = set(re.findall(r"^#?\s*(SYNO_[A-Z0-9_]+)=", examples, flags=re.MULTILINE)) - COMPOSE_ONLY
    assert sorted(variable for variable in given | listed if not _is_setting(variable)) == []


def test_files_compose_mounts_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./deploy/"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_dockerfile_is_one_pattern_for_all_services() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG SERVICE$", text, flags=re.MULTILINE)
    assert "python:3.11-slim" in text
    assert "COPY --from=uv /uv /uvx /bin/" in text and "ghcr.io/astral-sh/uv:" in text
    # Each sync picks the service's package (every package for the setup image) on the line before it.
    dependency_sync, project_sync = re.findall(r"^[^\n]*\n[^\n]*uv sync --frozen [^\n]*", text, flags=re.MULTILINE)
    assert "--no-install-workspace" in dependency_sync and '--package "syno-${SERVICE}"' in dependency_sync
    assert '--package "syno-${SERVICE}"' in project_sync
    assert "--frozen" in dependency_sync and "--frozen" in project_sync
    assert "--no-install-workspace" not in project_sync
    assert re.search(r"^USER \$\{UID\}:\$\{GID\}$", text, flags=re.MULTILINE)  # syno's ids, numeric (hadolint DL3066)
    for name in SERVICES:
        stage = text.split(f"FROM runtime AS service-{name}\n", 1)[1].split("\nFROM ", 1)[0]
        assert f'CMD ["python", "-m", "syno_{name}"]' in stage, name
    setup = text.split("FROM runtime AS service-setup\n", 1)[1].split("\nFROM ", 1)[0]
    assert 'CMD ["python", "-m", "syno_shared.provision"]' in setup
    assert "COPY dbt/ /app/dbt/" in text
    assert "FROM service-${SERVICE} AS final" in text


def test_compose_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests" / "deploy" / "compose-spec.json").read_text(encoding="utf-8"))
    errors = [
        f"{list(error.absolute_path)}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


PASSWORD_VARIABLE = re.compile(r"\$\{([A-Z_]*PASSWORD)")


def _passwords_read(service: dict[str, Any]) -> set[str]:
    return set(PASSWORD_VARIABLE.findall(" ".join(_strings(service.get("environment") or {}))))


def test_each_pipeline_container_gets_its_own_credentials_only(compose: dict[str, Any]) -> None:
    """Its own PostgreSQL role and NATS user; no other password; .env is never handed over whole."""
    for name in SERVICES:
        service = compose["services"][name]
        environment = _environment(service)
        assert re.match(
            rf"^postgresql://{access.pg_role(name)}:\$\{{PG_{name.upper()}_PASSWORD:", environment["SYNO_PG_DSN"]
        )
        assert environment["SYNO_NATS_USER"] == name
        assert environment["SYNO_NATS_PASSWORD"].startswith(f"${{NATS_{name.upper()}_PASSWORD:")
        assert environment["SYNO_MIGRATE_ON_START"] == "false"
        assert _passwords_read(service) == {f"PG_{name.upper()}_PASSWORD", f"NATS_{name.upper()}_PASSWORD"}, name
        env_files = [str(entry["path"] if isinstance(entry, dict) else entry) for entry in service["env_file"]]
        assert not [path for path in env_files if Path(path).name == ".env"], name
        assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}, name


def test_only_setup_and_postgres_hold_the_owner_password_and_only_setup_the_operators(compose: dict[str, Any]) -> None:
    holders = {
        variable: sorted(name for name, service in compose["services"].items() if variable in _passwords_read(service))
        for variable in ("POSTGRES_PASSWORD", "NATS_OPERATOR_PASSWORD")
    }
    assert holders == {"POSTGRES_PASSWORD": ["postgres", "setup"], "NATS_OPERATOR_PASSWORD": ["nats", "setup"]}
    setup = _environment(compose["services"]["setup"])
    assert setup["SYNO_NATS_USER"] == access.OPERATOR
    assert {f"PG_{role.removeprefix('syno_').upper()}_PASSWORD" for role in access.PG_ROLES} <= set(setup)


def test_grafana_asks_for_a_login_and_reads_through_the_read_only_role(compose: dict[str, Any]) -> None:
    environment = _environment(compose["services"]["lgtm"])
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert INTERPOLATION.match(environment["GF_SECURITY_ADMIN_PASSWORD"])
    assert environment["GRAFANA_PG_USER"] == access.MONITOR_ROLE
    assert environment["GRAFANA_PG_PASSWORD"].startswith("${PG_MONITOR_PASSWORD:")


PINNED = re.compile(r":v?\d+\.\d+[^:]*$")  # a release (PostgreSQL: major.minor), not a moving tag


def test_every_container_is_hardened(compose: dict[str, Any]) -> None:
    """No new privileges, no capabilities (but those an entrypoint needs to drop to its user), a memory
    limit, a pinned image; a read-only root filesystem wherever the image allows it."""
    for name, service in compose["services"].items():
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert service["cap_drop"] == ["ALL"], name
        assert set(service.get("cap_add", [])) <= {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}, name
        assert re.match(r"^\d+[mg]$", str(service["mem_limit"])), name
        image = str(service["image"])
        default = re.match(r"^\$\{[A-Z_]+:-(.+)\}$", image)  # ${NATS_IMAGE:-nats:2.15.1-alpine}
        image = default.group(1) if default else image
        assert PINNED.search(image) or image.startswith("syno/"), f"{name}: {image}"
        assert "latest" not in image, name
    for name in (*SERVICES, "setup", "nats", "postgres"):
        assert compose["services"][name]["read_only"] is True, name
    for name in SERVICES:  # longer than a service's graceful shutdown (syno_shared.health: 40 s)
        assert compose["services"][name]["stop_grace_period"] == "60s", name
        assert compose["services"][name]["healthcheck"]["test"], name
        assert compose["services"][name]["tmpfs"], name


def test_nats_users_are_the_ones_the_tests_run_with() -> None:
    """deploy/nats/auth.conf is syno_shared.access's rendering, the one the embedded runtime starts with."""
    assert (ROOT / "deploy" / "nats" / "auth.conf").read_text(encoding="utf-8") == access.nats_auth_file()


def test_nats_config_loads_in_nats_server_and_needs_every_password() -> None:
    passwords = {access.password_variable(user): f"pw-{user}" for user in access.NATS_USERS}
    environment = {key: value for key, value in os.environ.items() if not key.startswith("NATS_")}

    def check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(nats_server_binary()), "-c", "nats.conf", "-t"],
            cwd=ROOT / "deploy" / "nats",
            env={**environment, **extra},
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert check(passwords).returncode == 0
    missing = check({key: value for key, value in passwords.items() if "INGESTION" not in key})
    assert missing.returncode != 0 and "NATS_INGESTION_PASSWORD" in missing.stderr


def test_env_examples_carry_no_secret_values() -> None:
    for path in ENV_EXAMPLES:
        lines = re.findall(r"^([A-Z_][A-Z0-9_]*)=(.+)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
        assert [key for key, _ in lines if SECRET_NAME.search(key)] == [], path.name
    ignored = (ROOT / "deploy" / "env" / ".gitignore").read_text(encoding="utf-8").split()
    assert "*.env" in ignored and "!*.env.example" in ignored


def test_nats_config_enables_jetstream_with_monitoring() -> None:
    text = (ROOT / "deploy" / "nats" / "nats.conf").read_text(encoding="utf-8")
    assert re.search(r"^jetstream\s*\{", text, flags=re.MULTILINE)
    assert re.search(r"^\s*store_dir:", text, flags=re.MULTILINE)
    assert re.search(r"^http_port:\s*8222$", text, flags=re.MULTILINE)
    assert re.search(r"^max_payload:", text, flags=re.MULTILINE)


def _datasource_uids(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        if isinstance(node.get("datasource"), dict) and "uid" in node["datasource"]:
            found.add(node["datasource"]["uid"])
        for value in node.values():
            found |= _datasource_uids(value)
        return found
    if isinstance(node, list):
        return set().union(*(_datasource_uids(item) for item in node)) if node else set()
    return set()


def test_grafana_provisioning_loads() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "syno-postgres.yaml").read_text())
    (postgres,) = datasources["datasources"]
    assert postgres["uid"] == "syno-postgres"
    assert INTERPOLATION.match(postgres["secureJsonData"]["password"])
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "syno.yaml").read_text())["providers"]
    assert [provider["options"]["path"] for provider in providers] == ["/otel-lgtm/syno-dashboards"]

    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert [path.name for path in dashboards] == ["syno-forecast-accuracy.json", "syno-pipeline-health.json"]
    uids = []
    for path in dashboards:
        board = json.loads(path.read_text(encoding="utf-8"))
        assert board["uid"] and board["title"], path.name
        assert board["panels"], path.name
        assert _datasource_uids(board) <= BUILT_IN_DATASOURCES | {"syno-postgres", "-- Grafana --"}, path.name
        panel_ids = [panel["id"] for panel in board["panels"]]
        assert len(panel_ids) == len(set(panel_ids)), path.name
        uids.append(board["uid"])
    assert len(uids) == len(set(uids))
