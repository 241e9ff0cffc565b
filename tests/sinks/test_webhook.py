"""The webhook sink against a real receiver that verifies signatures with the README's example:
signing, batches, and what each status means (2xx, 410, 429 with Retry-After, 4xx, 5xx, a stall)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mediasyncd.config_sinks import SinkConfig, parse_webhook_secret
from mediasyncd.sinks.base import EventRejected, SinkGone, SinkUnavailable
from mediasyncd.sinks.signing import signature
from mediasyncd.sinks.webhook import WebhookSink, check_status, parse_retry_after
from tests.sinks.envelopes import envelope
from tests.sinks.receiver import Receiver, readme_verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    r.start()
    yield r
    r.stop()


def sink(receiver: Receiver, batch: int = 1, timeout: float = 15.0) -> WebhookSink:
    return WebhookSink(
        SinkConfig(
            name="hook", type="webhook", url=receiver.url, secret=parse_webhook_secret(SECRET), batch=batch,
            timeout=timeout,
        )
    )  # fmt: skip


def test_the_signature_matches_the_standard_webhooks_example() -> None:
    """The spec's published test vector (standard-webhooks, MIT)."""
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert (
        signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_the_readme_verifier_refuses_tampering_and_replays() -> None:
    """A changed body, a wrong key or an old timestamp: False."""
    import time

    verify = readme_verify()
    key = parse_webhook_secret(SECRET)
    now = int(time.time())
    headers = {
        "webhook-id": "5",
        "webhook-timestamp": str(now),
        "webhook-signature": signature(key, "5", now, b"{}"),
    }
    assert verify(SECRET, headers, b"{}")
    assert not verify(SECRET, headers, b"{ }")
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, b"{}")
    old = now - 3600
    stale = headers | {"webhook-timestamp": str(old), "webhook-signature": signature(key, "5", old, b"{}")}
    assert not verify(SECRET, stale, b"{}")


async def test_one_event_per_request_signed_with_its_id(receiver: Receiver) -> None:
    """batch = 1: the body is the envelope and webhook-id its id; the receiver verifies it."""
    s = sink(receiver)
    await s.deliver([envelope(41, "sync_complete", None, landed=2)])
    await s.close()
    (request,) = receiver.requests
    assert request["headers"]["webhook-id"] == "41" and request["body"]["id"] == 41
    assert receiver.bad_signatures == 0 and receiver.ids == [41]


async def test_a_batch_is_one_request(receiver: Receiver) -> None:
    """batch = N: {"events": [...]} and webhook-id batch-<first>-<last>."""
    s = sink(receiver, batch=3)
    await s.deliver([envelope(i, "sync_complete") for i in (7, 8, 9)])
    await s.close()
    (request,) = receiver.requests
    assert request["headers"]["webhook-id"] == "batch-7-9" and [
        e["id"] for e in request["body"]["events"]
    ] == [7, 8, 9]


async def test_statuses_map_to_gone_throttle_reject_and_outage(receiver: Receiver) -> None:
    """410 -> gone; 429 -> outage with Retry-After; 422 -> rejected; 500 -> outage; a stall times out."""
    s = sink(receiver, timeout=0.5)
    receiver.mode = "gone"
    with pytest.raises(SinkGone):
        await s.deliver([envelope(1, "sync_complete")])
    receiver.mode = "throttle"
    with pytest.raises(SinkUnavailable) as info:
        await s.deliver([envelope(1, "sync_complete")])
    assert info.value.retry_after == 1.0
    receiver.mode, receiver.reject = "ok", {1}
    with pytest.raises(EventRejected):
        await s.deliver([envelope(1, "sync_complete")])
    receiver.mode = "fail"
    with pytest.raises(SinkUnavailable, match="500"):
        await s.deliver([envelope(1, "sync_complete")])
    receiver.mode = "stall"
    with pytest.raises(SinkUnavailable, match="did not answer"):
        await s.deliver([envelope(1, "sync_complete")])
    receiver.stop()
    with pytest.raises(SinkUnavailable, match="cannot reach"):
        await s.deliver([envelope(1, "sync_complete")])
    await s.close()


def test_status_rules() -> None:
    """2xx confirms; 408 is an outage, not a rejection; Retry-After as seconds or an HTTP date."""
    check_status(200, "OK", None)
    check_status(204, "", None)
    with pytest.raises(SinkUnavailable):
        check_status(408, "Request Timeout", None)
    with pytest.raises(SinkUnavailable) as info:
        check_status(503, "Busy", "Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    assert info.value.retry_after == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    with pytest.raises(EventRejected):
        check_status(400, "Bad Request", None)
    with pytest.raises(SinkUnavailable):
        check_status(302, "Found", None)
