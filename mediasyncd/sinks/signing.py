"""Standard Webhooks signing (pure): `webhook-id`, `webhook-timestamp` (seconds) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the secret's
base64-decoded part after `whsec_`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from mediasyncd.sinks.base import Envelope


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def message_id(events: Sequence[Envelope], batched: bool) -> str:
    """The event id in decimal; for a batch `batch-<first id>-<last id>`."""
    if not batched:
        return str(events[0]["id"])
    return f"batch-{events[0]['id']}-{events[-1]['id']}"
