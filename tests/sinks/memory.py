"""A sink in memory for the delivery engine's tests: records what it got, and can be told to fail,
reject given event ids, or answer 410 (the error-injecting implementation of the Sink protocol)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from mediasyncd.sinks.base import Envelope, EventRejected, SinkGone


@dataclass
class MemorySink:
    got: list[int] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)
    down: bool = False
    gone: bool = False
    reject: set[int] = field(default_factory=set)
    opened: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> None:
        if self.down:
            raise ConnectionRefusedError("sink is down")
        self.opened += 1

    async def deliver(self, events: Sequence[Envelope]) -> None:
        ids = [int(e["id"]) for e in events]
        if self.gone:
            raise SinkGone("410 Gone")
        if self.down:
            raise ConnectionRefusedError("sink is down")
        bad = [i for i in ids if i in self.reject]
        if bad:
            raise EventRejected(f"bad events {bad}")
        self.got.extend(ids)
        self.batches.append(ids)
        self.arrived.set()

    async def close(self) -> None:
        pass
