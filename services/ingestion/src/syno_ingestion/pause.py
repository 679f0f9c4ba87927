"""`syno pause ingestion`, as the watcher obeys it.

Pause: the switch lives in the NATS control bucket (syno_shared.control), read at most every second by every
replica's watcher. While it is on, the watcher lists the share (and keeps its heartbeat) but takes no new file:
files stay on the share untouched, the log says so when the state changes and every few minutes, and the
health report and the heartbeat carry `is_paused` and `files_waiting`. A file already being ingested when
the pause arrives is finished. On resume, the files waiting are offered again once they are seen stable, as
any new file. If NATS cannot be asked, the last state read is kept (a pause is never lifted by an outage).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

import nats.errors

from syno_ingestion.settings import IngestionService
from syno_ingestion.share import FileState
from syno_shared import control
from syno_shared.logging import get_logger

COMPONENT: Final = "ingestion"
CHECK_EVERY_SECONDS: Final = 1.0
REMIND_EVERY_SECONDS: Final = 300.0
_BUS_ERRORS: Final = (nats.errors.Error, TimeoutError, OSError)


class PauseSwitch:
    """The watcher's view of the pause: `admit` is where it decides whether to take the files it offers."""

    def __init__(self, service: IngestionService) -> None:
        self.service = service
        self.state = control.PauseState()
        self._checked_at = float("-inf")
        self._reminded_at = float("-inf")

    async def current(self) -> control.PauseState:
        if time.monotonic() - self._checked_at < CHECK_EVERY_SECONDS:
            return self.state
        connection = self.service.broker.connection
        try:
            state = await asyncio.wait_for(control.read_pause(connection.jetstream(), COMPONENT), 5.0)
        except _BUS_ERRORS as error:
            get_logger().warning("pause_state_unavailable", kept=self.state.is_paused, error=str(error))
            return self.state
        finally:
            self._checked_at = time.monotonic()
        if state.is_paused != self.state.is_paused:
            what = "ingestion_paused" if state.is_paused else "ingestion_resumed"
            get_logger().warning(what, reason=state.reason, changed_by=state.changed_by)
            self._reminded_at = time.monotonic()
        self.state = state
        return state

    async def admit(
        self,
        listing: Mapping[Path, FileState],
        *,
        offer: Callable[[Mapping[Path, FileState]], list[Path]],
        forget: Callable[[Iterable[Path]], None],
    ) -> list[Path]:
        """The files to take now: those the watcher offers (`offer`), or none while paused (they are forgotten, so
        they are offered again, once seen stable, after the resume)."""
        ready = offer(listing)
        is_paused = (await self.current()).is_paused
        self.service.details.update(is_paused=is_paused, files_waiting=len(listing) if is_paused else 0)
        if not is_paused:
            return ready
        forget(ready)
        if time.monotonic() - self._reminded_at >= REMIND_EVERY_SECONDS:
            get_logger().warning("ingestion_still_paused", files_waiting=len(listing), reason=self.state.reason)
            self._reminded_at = time.monotonic()
        return []
