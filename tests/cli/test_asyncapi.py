"""docs/asyncapi.yaml is what FastStream generates from the services' typed subscribers and publishers, and it
states the contract: every event subject with its publishers, its consumers and the event's JSON schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syno_cli import asyncapi
from syno_shared import access, bus


@pytest.fixture(scope="module")
def generated() -> str:
    return asyncapi.pipeline_document()


def test_the_committed_document_is_the_generated_one(generated: str) -> None:
    committed = asyncapi.DOCUMENT.read_text(encoding="utf-8")
    assert committed == generated, "docs/asyncapi.yaml differs from what the code generates: run `just asyncapi`"


def test_check_fails_on_a_stale_document_and_passes_on_a_fresh_one(tmp_path: Path, generated: str) -> None:
    document = tmp_path / "asyncapi.yaml"
    document.write_text(generated.replace("pipeline.failed", "pipeline.broken", 1), encoding="utf-8")
    assert asyncapi.main(["--check", "--output", str(document)]) == 1
    assert asyncapi.main(["--output", str(document)]) == 0
    assert asyncapi.main(["--check", "--output", str(document)]) == 0
    assert document.read_text(encoding="utf-8") == generated


def _payload(document: dict[str, Any], channel: str) -> str:
    (message,) = document["channels"][channel]["messages"].values()
    reference = message["$ref"].removeprefix("#/components/messages/")
    schema_reference: str = document["components"]["messages"][reference]["payload"]["$ref"]
    return schema_reference.removeprefix("#/components/schemas/")


def test_every_subject_lists_its_publishers_and_consumers_with_the_event_schema(generated: str) -> None:
    """Who sends and who receives each subject comes from the access plan (the NATS permissions); each side's
    payload is the subject's event model, whose schema (field descriptions included) is in the document."""
    document = yaml.safe_load(generated)
    expected: dict[str, tuple[str, str]] = {}
    for service in access.SERVICES:
        plan = access.service_bus(service)
        for subject in plan.publishes:
            if subject in bus.EVENT_MODELS:
                expected[f"{subject}:from:syno-{service}"] = ("send", bus.EVENT_MODELS[subject].__name__)
        for consumer in plan.consumes:
            if consumer.subject in bus.EVENT_MODELS:
                expected[f"{consumer.subject}:to:{consumer.durable}"] = (
                    "receive",
                    bus.EVENT_MODELS[consumer.subject].__name__,
                )
    found = {
        name: (operation["action"], _payload(document, name)) for name, operation in document["operations"].items()
    }
    assert found == expected
    for model in bus.EVENT_MODELS.values():
        schema = document["components"]["schemas"][model.__name__]
        assert list(schema["properties"]) == list(model.model_json_schema()["properties"])
        assert all(field.get("description") for field in schema["properties"].values()), model.__name__
