"""The scheduled re-forecast: on its cron (SYNO_TRANSFORM__REFORECAST_CRON, e.g. '0 6 * * 1'), the published
snapshot is forecast again, and activated again, without a new workbook.

Run by the transform service because least privilege allows nothing else: a service may publish only its own
events (syno_shared.access), and marts.ready is the transform's. The tick re-publishes the marts.ready the
transform recorded for the published snapshot (its completion in ops.stage_completions: the build's schema, the
facts of the run) as a forced replay, `Syno-Force: 1` with the attempt `schedule-<tick>`: forecast redoes its work
for that snapshot under a new message id, and the stages downstream follow as after `syno replay --force`.
Forecast and activation need no new right and no schedule of their own; the operator's CLI could do the same by
hand (`syno replay marts.ready --snapshot ID --force`). The tick itself is fired once across replicas and
recorded with its result in ops.schedules (syno_shared.schedules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from syno_shared import bus
from syno_shared.schedules import Action, Schedule
from syno_shared.service import Service
from syno_transform.settings import TransformOptions, TransformSettings

REFORECAST_SCHEDULE: Final = "transform.reforecast"

PUBLISHED_READY = """
select p.snapshot_id, c.output_event::text as event
from ops.published_snapshot p
join ops.stage_completions c on c.snapshot_id = p.snapshot_id and c.stage = 'transform'
order by p.publication_id desc limit 1
"""


def reforecast_schedule(options: TransformOptions) -> Schedule | None:
    if options.reforecast_cron is None:
        return None
    return Schedule(REFORECAST_SCHEDULE, "transform", options.reforecast_cron, options.schedule_timezone)


def attempt_of(tick: datetime) -> str:
    """The replay attempt of a tick: part of every downstream message id, so no tick's events are dropped."""
    return f"schedule-{tick:%Y%m%dT%H%MZ}"


def reforecast_action(service: Service[TransformSettings]) -> Action:
    async def republish(tick: datetime) -> str:
        row = await service.pool.fetchrow(PUBLISHED_READY)
        if row is None:
            return "no snapshot published yet: nothing to forecast again"
        attempt = attempt_of(tick)
        headers = {
            "Nats-Msg-Id": bus.message_id(bus.MARTS_READY, row["snapshot_id"], attempt),
            bus.FORCE_HEADER: "1",
            bus.ATTEMPT_HEADER: attempt,
        }
        ack = await service.broker.publish(
            row["event"], bus.MARTS_READY, headers=headers, stream=service.settings.stream_name
        )
        duplicate = ", already published by this tick" if ack.duplicate else ""
        return f"marts.ready of {row['snapshot_id'][:12]} re-published as {attempt} (stream seq {ack.seq}{duplicate})"

    return republish
