"""Event sinks (SPEC §3.7): the event log delivered at least once, in id order, to PostgreSQL, signed
webhooks and plug-in sinks. Plugin authors import `Sink`, `Envelope`, `EventRejected` from here."""

from mediasyncd.sinks.base import Envelope, EventRejected, Sink, SinkGone, SinkUnavailable

__all__ = ["Envelope", "EventRejected", "Sink", "SinkGone", "SinkUnavailable"]
