"""What `/status` says of one sink (SPEC §3.7); the courier updates it in place. Never a secret."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

SinkState = Literal["ok", "backoff", "disabled", "error"]


@dataclass
class SinkStatus:
    name: str
    type: str
    state: SinkState = "ok"
    acked_id: int = 0
    head_id: int = 0
    lag_events: int = 0
    oldest_pending: float | None = None  # time of the oldest event not acknowledged yet
    parked: int = 0
    last_error: str | None = None
    retry_in_s: float | None = None

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        at = time.time() if now is None else now
        lag_s = max(0.0, at - self.oldest_pending) if self.oldest_pending is not None else 0.0
        return {
            "name": self.name,
            "type": self.type,
            "state": self.state,
            "acked_id": self.acked_id,
            "lag_events": self.lag_events,
            "lag_s": round(lag_s, 3),
            "parked": self.parked,
            "last_error": self.last_error,
        }
