"""OpenLineage run events for each pipeline stage, so a data catalog (Marquez, DataHub, ...) shows lineage.

One event per call: job ``syno.<stage>`` in namespace 'syno' (configurable), run id = the stage's run,
and a ``parent`` run facet pointing at the workbook snapshot run, so every stage of one workbook hangs
under the same parent in the catalog. Inputs and outputs are datasets (tables, files) by name.

Transports, from `LineageTransportConfig.kind`: ``console`` (logged at INFO by the openlineage
client), ``file`` (one JSON event per line appended to `file_path`), ``http`` (``POST <url>/<endpoint>``,
default endpoint ``api/v1/lineage``, optional ``Authorization: Bearer <api_key>``) or ``off``.

OpenLineage requires UUID run ids. A run id that is a UUID in any spelling (the pipeline uses uuid4
hex) is sent in canonical form; any other string is mapped to a stable uuid5, so the same run always
gets the same id. Emitting never raises on a transport failure: the result says is_ok=False and why.

`emit_pipeline_lineage` sends one COMPLETE event per stage of a finished run, with the datasets each
stage reads and writes (`STAGE_DATASETS`), and folds the outcomes into one `DeliveryResult`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run, tags_run

from syno_shared.events import DeliveryResult

TransportKind = Literal["console", "file", "http", "off"]
EventType = Literal["START", "COMPLETE", "FAIL"]

JOB_NAMESPACE: Final = "syno"
PRODUCER: Final = "urn:syno:pipeline"
PARENT_JOB_NAME: Final = "syno.workbook"

# The marts transform publishes.
MARTS: Final = [
    "marts.sellout_quarterly",
    "marts.svr_rm_quarterly",
    "marts.svr_rm_customer_quarterly",
    "marts.c2_adoption_scorecard",
    "marts.commercial_activation_snapshot",
]

# Stage -> (datasets read, datasets written), so the catalog shows a workbook's way through the pipeline.
STAGE_DATASETS: Final[dict[str, tuple[list[str], list[str]]]] = {
    "ingestion": ([], ["processed.ingestion"]),
    "transform": (["processed.ingestion", "mapping_table"], ["raw.sales_lines", *MARTS]),
    "forecast": (
        [
            "marts.sellout_quarterly",
            "marts.svr_rm_quarterly",
            "marts.svr_rm_customer_quarterly",
            "marts.c2_adoption_scorecard",
        ],
        ["forecast.svr_rm", "forecast.c2", "forecast.sellout"],
    ),
    "activation": (
        [
            "marts.commercial_activation_snapshot",
            "marts.c2_adoption_scorecard",
            "marts.svr_rm_customer_quarterly",
            "forecast.sellout",
            "forecast.svr_rm",
        ],
        ["activation.storylines"],
    ),
}


@dataclass(frozen=True, slots=True)
class LineageTransportConfig:
    """Where lineage events go. Plain data: build it from settings."""

    kind: TransportKind = "console"
    file_path: str | None = None
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 5.0
    retries: int = 2
    backoff_seconds: float = 0.3


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset as OpenLineage names it, e.g. namespace 'postgres://db:5432', name 'syno.marts.x'."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class LineageResult:
    """Outcome of one emission; `run_id` is the UUID actually sent."""

    is_ok: bool
    detail: str
    run_id: str
    event_type: EventType


def lineage_run_id(run_id: str) -> str:
    """A canonical UUID for `run_id`: itself when it is a UUID, else uuid5 of 'syno:<run_id>'."""
    try:
        return str(UUID(run_id))
    except ValueError:
        return str(uuid5(NAMESPACE_URL, f"syno:{run_id}"))


def _transport(config: LineageTransportConfig) -> dict[str, Any]:
    if config.kind == "file":
        if not config.file_path:
            raise ValueError("file transport needs file_path")
        return {"type": "file", "log_file_path": config.file_path, "append": True}
    if config.kind == "http":
        if not config.url:
            raise ValueError("http transport needs url")
        transport: dict[str, Any] = {
            "type": "http",
            "url": config.url,
            "endpoint": config.endpoint,
            "timeout": config.timeout_seconds,
            "retry": {
                "total": config.retries,
                "connect": config.retries,
                "read": config.retries,
                "backoff_factor": config.backoff_seconds,
            },
        }
        if config.api_key:
            transport["auth"] = {"type": "api_key", "apiKey": config.api_key}
        return transport
    return {"type": "console"}


def _datasets(
    refs: Sequence[str | DatasetRef], namespace: str, kind: type[InputDataset] | type[OutputDataset]
) -> list[Any]:
    named = [ref if isinstance(ref, DatasetRef) else DatasetRef(namespace, ref) for ref in refs]
    return [kind(namespace=ref.namespace, name=ref.name) for ref in named]


def build_stage_event(
    *,
    stage: str,
    run_id: str,
    parent_run_id: str,
    event_type: EventType,
    inputs: Sequence[str | DatasetRef] = (),
    outputs: Sequence[str | DatasetRef] = (),
    job_namespace: str = JOB_NAMESPACE,
    dataset_namespace: str = JOB_NAMESPACE,
    snapshot_id: str | None = None,
    error_message: str | None = None,
    event_time: datetime | None = None,
) -> RunEvent:
    """The OpenLineage RunEvent for one stage run (pure; `emit_stage_lineage` sends it)."""
    facets: dict[str, Any] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=lineage_run_id(parent_run_id)),
            job=parent_run.Job(namespace=job_namespace, name=PARENT_JOB_NAME),
        )
    }
    if snapshot_id:
        facets["tags"] = tags_run.TagsRunFacet(
            tags=[tags_run.TagsRunFacetFields(key="snapshot_id", value=snapshot_id, source="SYNO")]
        )
    if event_type == "FAIL" and error_message:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error_message, programmingLanguage="python"
        )
    job_facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SYNO", jobType="STAGE")
    }
    return RunEvent(
        eventType=RunState[event_type],
        eventTime=(event_time or datetime.now(UTC)).isoformat(),
        run=Run(runId=lineage_run_id(run_id), facets=facets),
        job=Job(namespace=job_namespace, name=f"syno.{stage}", facets=job_facets),
        inputs=_datasets(inputs, dataset_namespace, InputDataset),
        outputs=_datasets(outputs, dataset_namespace, OutputDataset),
        producer=PRODUCER,
    )


def emit_stage_lineage(
    transport_config: LineageTransportConfig,
    *,
    stage: str,
    run_id: str,
    parent_run_id: str,
    event_type: EventType,
    inputs: Sequence[str | DatasetRef] = (),
    outputs: Sequence[str | DatasetRef] = (),
    job_namespace: str = JOB_NAMESPACE,
    dataset_namespace: str = JOB_NAMESPACE,
    snapshot_id: str | None = None,
    error_message: str | None = None,
) -> LineageResult:
    """Build and send the stage's RunEvent. Never raises on a transport or configuration failure.

    `dataset_namespace` applies to inputs/outputs given as plain names; pass `DatasetRef`s (or e.g.
    'postgres://host:5432' as the namespace) to follow the OpenLineage naming spec.
    """
    event = build_stage_event(
        stage=stage,
        run_id=run_id,
        parent_run_id=parent_run_id,
        event_type=event_type,
        inputs=inputs,
        outputs=outputs,
        job_namespace=job_namespace,
        dataset_namespace=dataset_namespace,
        snapshot_id=snapshot_id,
        error_message=error_message,
    )
    sent_run_id = event.run.runId
    if transport_config.kind == "off":
        return LineageResult(True, "lineage is off", sent_run_id, event_type)
    try:
        client = OpenLineageClient(config={"transport": _transport(transport_config)})
    except (ValueError, KeyError, TypeError) as error:
        return LineageResult(False, f"bad {transport_config.kind} transport config: {error}", sent_run_id, event_type)
    try:
        client.emit(event)
    # requests' errors are OSErrors (HTTP status, connection, retries); the file transport wraps its
    # OSError in a RuntimeError.
    except (OSError, RuntimeError) as error:
        return LineageResult(
            False, f"{transport_config.kind} transport failed: {_describe(error)}", sent_run_id, event_type
        )
    finally:
        client.close(timeout=transport_config.timeout_seconds)
    return LineageResult(
        True, f"{event_type} for syno.{stage} sent to {transport_config.kind}", sent_run_id, event_type
    )


def _describe(error: OSError | RuntimeError) -> str:
    """The error's kind and HTTP status; the text only for the file transport (never holds a URL)."""
    if not isinstance(error, OSError):
        return str(error)
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return f"{type(error).__name__}" + (f" (HTTP {status})" if isinstance(status, int) else "")


async def emit_stage_lineage_async(
    transport_config: LineageTransportConfig,
    *,
    stage: str,
    run_id: str,
    parent_run_id: str,
    event_type: EventType,
    inputs: Sequence[str | DatasetRef] = (),
    outputs: Sequence[str | DatasetRef] = (),
    job_namespace: str = JOB_NAMESPACE,
    dataset_namespace: str = JOB_NAMESPACE,
    snapshot_id: str | None = None,
    error_message: str | None = None,
) -> LineageResult:
    """`emit_stage_lineage` in a worker thread (the openlineage HTTP transport blocks)."""
    return await asyncio.to_thread(
        functools.partial(
            emit_stage_lineage,
            transport_config,
            stage=stage,
            run_id=run_id,
            parent_run_id=parent_run_id,
            event_type=event_type,
            inputs=inputs,
            outputs=outputs,
            job_namespace=job_namespace,
            dataset_namespace=dataset_namespace,
            snapshot_id=snapshot_id,
            error_message=error_message,
        )
    )


def pipeline_lineage_result(kind: TransportKind, results: Sequence[LineageResult]) -> DeliveryResult:
    """One delivery result for a run's lineage events: ok when every event went out."""
    failures = [result.detail for result in results if not result.is_ok]
    return DeliveryResult(
        target=f"openlineage:{kind}",
        is_ok=not failures,
        detail="; ".join(failures) or f"{len(results)} run events",
    )


async def emit_pipeline_lineage(
    transport_config: LineageTransportConfig, *, run_id: str, snapshot_id: str
) -> DeliveryResult | None:
    """COMPLETE events for every stage of the run (stage run `<run_id>:<stage>` under the run); None when off."""
    if transport_config.kind == "off":
        return None
    results = [
        await emit_stage_lineage_async(
            transport_config,
            stage=stage,
            run_id=f"{run_id}:{stage}",
            parent_run_id=run_id,
            event_type="COMPLETE",
            inputs=inputs,
            outputs=outputs,
            snapshot_id=snapshot_id,
        )
        for stage, (inputs, outputs) in STAGE_DATASETS.items()
    ]
    return pipeline_lineage_result(transport_config.kind, results)
