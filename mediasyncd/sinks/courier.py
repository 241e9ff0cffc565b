"""One sink's delivery loop: read the event log after the sink's acknowledged position, in id order, in
batches; acknowledge only after the sink confirmed.

An outage (any failure but a rejection) holds the position and is retried with capped backoff and jitter
(`Retry-After` honoured). A rejected batch is split to find the poison event, which is retried on a
slower schedule and parked after `max_attempts` (kept with its error; `events retry` re-queues it, and it
is then delivered out of order). A 410 disables the sink until its config changes. The courier only reads
the log: however slow or dead the sink, landing never waits for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import EventRejected, Sink, SinkGone, SinkUnavailable
from mediasyncd.sinks.status import SinkStatus
from mediasyncd.state import Event, Store
from mediasyncd.state.sinks import SinkLedger, event_from_envelope

log = structlog.get_logger("mediasyncd.sinks")

OUTAGE = Backoff(base=0.5, cap=60.0)
REJECTED = Backoff(base=1.0, cap=600.0)  # a poison event is retried slower than an outage
READ = 512  # events read from the log at a time (at least `batch`)
POLL = 1.0  # how often requests of `events replay|retry` (another process) are looked for
STATUS_EVERY = 1.0
CLOSE_TIMEOUT = 5.0


class Stopped(Exception):
    """The sink disabled itself (a 410)."""


class Courier:
    def __init__(
        self,
        config: SinkConfig,
        sink: Sink,
        store: Store,
        status: SinkStatus,
        on_gone: Callable[[], None] = lambda: None,
        outage: Backoff = OUTAGE,
        rejected: Backoff = REJECTED,
    ) -> None:
        self.config = config
        self.name = config.name
        self.sink = sink
        self.store = store
        self.ledger = SinkLedger(store)
        self.status = status
        self.on_gone = on_gone
        self.outage = outage
        self.rejected = rejected
        self.position = 0
        self._status_at = 0.0
        self._read_size = config.batch * max(1, READ // config.batch)  # whole batches at a time
        self._requeue_at: float | None = None  # when re-queued events that were rejected again are due

    async def run(self) -> None:
        new = self.store.follow()
        try:
            await self._open()
            self.position = await self.ledger.acked(self.name)
            self.status.parked = await self.ledger.parked(self.name)
            await self._retry_requeued()
            while True:
                new.clear()
                await self._requests()
                if self._requeue_at is not None and time.monotonic() >= self._requeue_at:
                    await self._retry_requeued()
                events = await self.ledger.events(self.name, self.position, self._read_size)
                if events:
                    await self._deliver_read(events)
                    await self._refresh(force=False)
                    continue
                await self._refresh(force=True)
                try:
                    async with asyncio.timeout(POLL):
                        await new.wait()
                except TimeoutError:
                    pass
        except Stopped:
            return
        finally:
            self.store.unfollow(new)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.sink.close()
            except Exception as exc:
                log.warning("sink did not close cleanly", sink=self.name, error=_text(exc))

    # ----------------------------------------------------------------------------------- phases

    async def _open(self) -> None:
        attempt = 0
        while True:
            try:
                await self.sink.open()
                return
            except SinkGone as exc:
                await self._gone(exc)
            except Exception as exc:
                await self._outage(exc, attempt, "cannot open the sink")
                attempt += 1

    async def _deliver_read(self, events: Sequence[Event]) -> None:
        """Deliver the wanted events of what was read, `batch` at a time, acknowledging as it goes."""
        group: list[Event] = []
        for event in events:
            if self.config.wants(event.type):
                group.append(event)
            if len(group) >= self.config.batch:
                await self._deliver_group(group, event.id)
                group = []
        await self._deliver_group(group, events[-1].id)

    async def _deliver_group(self, group: list[Event], ack_to: int) -> None:
        attempt = 0
        while group:
            try:
                await self._deliver(group)
                break
            except SinkGone as exc:
                await self._gone(exc)
            except Exception as exc:
                await self._outage(exc, attempt, "delivery failed")
                attempt += 1
        await self.ledger.ack(self.name, ack_to)
        self.position = ack_to
        self.status.acked_id = ack_to
        if self.status.state != "ok":
            log.info("sink delivering again", sink=self.name)
        self.status.state = "ok"
        self.status.retry_in_s = None

    async def _deliver(self, group: list[Event]) -> None:
        """Deliver `group`; a rejected batch is split until the rejected events are found."""
        try:
            await self.sink.deliver([e.envelope() for e in group])
        except EventRejected as exc:
            if len(group) == 1:
                await self._poison(group[0], exc)
                return
            middle = len(group) // 2
            await self._deliver(group[:middle])
            await self._deliver(group[middle:])

    async def _poison(self, event: Event, first: EventRejected) -> None:
        """Retry one rejected event on the slow schedule until it goes through or is parked."""
        error: Exception = first
        while True:
            rejected = await self.ledger.record_reject(
                self.name, event, _text(error), self.config.max_attempts
            )
            self.status.last_error = f"event {event.id} rejected: {_text(error)}"
            if rejected.parked:
                self.status.parked += 1
                log.error(
                    "sink rejected an event; parked it (`mediasyncd events retry --sink` re-queues it)",
                    sink=self.name, event_id=event.id, type=event.type, attempts=rejected.attempts,
                    error=_text(error),
                )  # fmt: skip
                return
            delay = self.rejected.delay(rejected.attempts - 1)
            log.warning(
                "sink rejected an event; retrying it", sink=self.name, event_id=event.id,
                attempts=rejected.attempts, retry_in_s=round(delay, 1), error=_text(error),
            )  # fmt: skip
            self.status.state = "error"
            self.status.retry_in_s = delay
            await asyncio.sleep(delay)
            try:
                await self.sink.deliver([event.envelope()])
            except EventRejected as exc:
                error = exc
                continue
            await self.ledger.clear_reject(self.name, event.id)
            return

    async def _retry_requeued(self) -> None:
        """Events `events retry` re-queued: one attempt each now, out of order (they are behind the
        position); rejected again, they count attempts towards parking again, and are tried on the slow
        schedule until delivered or parked."""
        self._requeue_at = None
        for rejected in await self.ledger.requeued(self.name):
            event = event_from_envelope(rejected.envelope)
            try:
                await self.sink.deliver([event.envelope()])
            except EventRejected as exc:
                again = await self.ledger.record_reject(
                    self.name, event, _text(exc), self.config.max_attempts
                )
                self.status.last_error = f"event {event.id} rejected: {_text(exc)}"
                log.warning(
                    "re-queued event rejected again", sink=self.name, event_id=event.id, parked=again.parked
                )
                if not again.parked:
                    at = time.monotonic() + self.rejected.delay(again.attempts - 1)
                    self._requeue_at = min(at, self._requeue_at or at)
                continue
            except SinkGone as exc:
                await self._gone(exc)
            except Exception as exc:
                log.warning("re-queued events wait for the sink", sink=self.name, error=_text(exc))
                self._requeue_at = time.monotonic() + self.outage.cap
                return
            await self.ledger.clear_reject(self.name, event.id)
            log.info("re-queued event delivered", sink=self.name, event_id=event.id)
        self.status.parked = await self.ledger.parked(self.name)

    async def _requests(self) -> None:
        asked = await self.ledger.take_requests(self.name)
        if asked.rewind_to is not None:
            self.position = asked.rewind_to
            await self.ledger.set_position(self.name, asked.rewind_to)
            log.info("sink replays the log", sink=self.name, since=asked.rewind_to)
        if asked.requeued:
            await self._retry_requeued()

    # ----------------------------------------------------------------------------------- failures

    async def _outage(self, exc: Exception, attempt: int, what: str) -> None:
        delay = self.outage.delay(attempt)
        if isinstance(exc, SinkUnavailable) and exc.retry_after is not None:
            delay = min(max(exc.retry_after, 0.0), 3600.0)
        self.status.state = "backoff"
        self.status.last_error = _text(exc)
        self.status.retry_in_s = delay
        log.warning(what, sink=self.name, error=_text(exc), attempt=attempt + 1, retry_in_s=round(delay, 2))
        await self._refresh(force=True)
        await asyncio.sleep(delay)

    async def _gone(self, exc: SinkGone) -> None:
        reason = _text(exc)
        await self.ledger.mark_gone(self.name, self.config.fingerprint(), reason)
        self.status.state = "disabled"
        self.status.last_error = reason
        log.error("sink disabled until its config changes", sink=self.name, reason=reason)
        self.on_gone()
        raise Stopped

    async def _refresh(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._status_at < STATUS_EVERY:
            return
        self._status_at = now
        head, lag, oldest = await self.ledger.head(self.name)
        self.status.head_id, self.status.lag_events, self.status.oldest_pending = head, lag, oldest


def _text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:500]
