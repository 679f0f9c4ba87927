"""Fault injection for the reliability suite: a real SIGKILL of this process at a named point.

`SYNO_FAULT=<point>` kills the process when it reaches that point (`transform.after_commit`); with a
delay, `SYNO_FAULT=<point>:<seconds>` kills it that many seconds after reaching the point while it
works on (`transform.work:3` dies three seconds into the transform's work: during the COPY or dbt). Unset
in production, where `at()` costs one dictionary lookup. The kill is the real thing (SIGKILL: no
cleanup, no finally blocks), so what the suite proves is what a crash does.
"""

from __future__ import annotations

import asyncio
import os
import signal

ENVIRONMENT_VARIABLE = "SYNO_FAULT"


def _armed(point: str) -> float | None:
    """Seconds to wait before the kill, if this point is armed."""
    name, _, delay = os.environ.get(ENVIRONMENT_VARIABLE, "").partition(":")
    if name != point:
        return None
    return float(delay) if delay else 0.0


def at(point: str) -> None:
    """Die here, now or after the configured delay (a timer on the running event loop), if armed."""
    delay = _armed(point)
    if delay is None:
        return
    if delay == 0.0:
        os.kill(os.getpid(), signal.SIGKILL)
    asyncio.get_running_loop().call_later(delay, os.kill, os.getpid(), signal.SIGKILL)
