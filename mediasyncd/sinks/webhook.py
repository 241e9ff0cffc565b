"""The webhook sink (aiohttp client): a JSON POST per event (or per batch of `batch` events, as
`{"events": [...]}`), signed per Standard Webhooks, with a timeout.

Only a 2xx confirms. 410 disables the sink until its config changes; 429 and 503 are outages that honour
`Retry-After`; 408 and 5xx are outages; any other 4xx rejects the events (poison: found, retried slower,
parked). Connection errors and timeouts are outages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from mediasyncd import __version__
from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import Envelope, EventRejected, SinkGone, SinkUnavailable
from mediasyncd.sinks.signing import message_id, signed_headers

THROTTLED = (429, 503)


class WebhookSink:
    def __init__(self, config: SinkConfig) -> None:
        if config.url is None or config.secret is None:
            raise ValueError("a webhook sink needs a url and a secret")
        self.url = config.url
        self.key = config.secret
        self.batched = config.batch > 1
        self.timeout = config.timeout
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"user-agent": f"mediasyncd/{__version__}"},
            )

    async def deliver(self, events: Sequence[Envelope]) -> None:
        if self.session is None:
            await self.open()
        assert self.session is not None
        document = {"events": list(events)} if self.batched else events[0]
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signed_headers(self.key, message_id(events, self.batched), int(time.time()), body)
        try:
            async with self.session.post(self.url, data=body, headers=headers, allow_redirects=False) as resp:
                status, reason = resp.status, resp.reason or ""
                retry_after = resp.headers.get("Retry-After")
                await resp.read()
        except TimeoutError:
            raise SinkUnavailable(f"the receiver did not answer within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise SinkUnavailable(f"cannot reach the receiver: {type(exc).__name__}: {exc}") from None
        check_status(status, reason, retry_after)

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()


def check_status(status: int, reason: str, retry_after: str | None, now: float | None = None) -> None:
    """Return for a 2xx; otherwise raise what the status means for the courier."""
    said = f"HTTP {status} {reason}".strip()
    if 200 <= status < 300:
        return
    if status == 410:
        raise SinkGone(f"the receiver answered {said}: disabled until the sink's config changes")
    if status in THROTTLED:
        raise SinkUnavailable(f"the receiver answered {said}", parse_retry_after(retry_after, now))
    if 400 <= status < 500 and status != 408:
        raise EventRejected(f"the receiver refused the events: {said}")
    raise SinkUnavailable(f"the receiver answered {said}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After`: seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    at = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - at)
