"""What a sink is (the protocol every built-in and plug-in sink implements) and how it says what went wrong.

A sink receives envelopes (SPEC §3.7: `{"id", "type", "time", "remote", "path", "sync_id", "data"}`), in
id order, in batches, at least once. `deliver` returning means the sink has them (committed, 2xx, ...).
It raises `EventRejected` when the sink refuses the content of the batch (a poison event: the courier
splits the batch to find it, retries it slower, then parks it), `SinkGone` when the endpoint is gone for
good (the sink is disabled until its config changes), anything else for an outage (retried with backoff;
`retry_after` on the exception, when set, is honoured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Envelope = Mapping[str, Any]


class Sink(Protocol):
    async def open(self) -> None:
        """Connect, create or migrate what the sink needs; raise on an outage (it is called again)."""

    async def deliver(self, events: Sequence[Envelope]) -> None:
        """Deliver these envelopes durably, all or none; return only when the sink confirmed."""

    async def close(self) -> None:
        """Release connections (also after a failed open)."""


class EventRejected(Exception):
    """The sink refuses these events themselves: retrying the same batch will not help."""


class SinkGone(Exception):
    """The sink says it is gone for good (an HTTP 410): disable it until its config changes."""


class SinkUnavailable(Exception):
    """An outage; `retry_after` seconds, when known (HTTP 429/503 `Retry-After`)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
