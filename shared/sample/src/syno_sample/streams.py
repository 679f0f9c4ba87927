"""The random streams: one ``random.Random`` per seed and purpose, stable across runs and platforms."""

from __future__ import annotations

import random


def stream(seed: int, *purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512, so streams are stable across runs and platforms.
    return random.Random(":".join(("syno-sample", str(seed), *purpose)))
