"""Waiting between attempts: capped exponential backoff with jitter, and a sleep that can be cut short."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Attempt n waits uniform(c/2, c), c = min(cap, base * 2**n)."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 30)))
        return (rng or random).uniform(ceiling / 2, ceiling)


def jittered(interval: float, rng: random.Random | None = None) -> float:
    """`interval` give or take 10 %: remotes started together drift apart instead of listing together."""
    return interval * (rng or random).uniform(0.9, 1.1)


async def sleep_or_wake(wake: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `wake` is set; the event is cleared for the next sleep."""
    try:
        async with asyncio.timeout(seconds):  # unlike wait_for (3.11), never drops a cancel
            await wake.wait()
    except TimeoutError:
        pass
    wake.clear()
