"""Envelopes as the event log writes them (SPEC §3.7), for the sink tests."""

from __future__ import annotations

from typing import Any

from mediasyncd.state.events import iso_ms

T0 = 1_780_000_000.0


def envelope(
    event_id: int, kind: str, rel: str | None = None, remote: str | None = "r1", **data: Any
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "time": iso_ms(T0 + event_id),
        "remote": remote if rel else None,
        "path": rel,
        "sync_id": None,
        "data": data,
    }


def synced(event_id: int, file_id: int, rel: str, sha: str, size: int = 100) -> dict[str, Any]:
    return envelope(
        event_id, "file_synced", rel, file_id=file_id, sha256=sha, library_path=f"r1/{rel}", size=size,
        mtime=T0 - 60,
    )  # fmt: skip


def processed(event_id: int, file_id: int, rel: str, sha: str, prompt: str = "a red fox") -> dict[str, Any]:
    return envelope(
        event_id, "file_processed", rel, file_id=file_id, sha256=sha, library_path=f"r1/{rel}",
        generator="a1111", prompt=prompt, negative_prompt="blurry", model="sdxl", seed=1234567890123,
        steps=30, cfg=7.5, width=1024, height=768, metadata={"prompt": prompt, "sampler": "Euler a"},
    )  # fmt: skip


def purged(event_id: int, file_id: int, rel: str, sha: str) -> dict[str, Any]:
    return envelope(
        event_id, "file_purged", rel, file_id=file_id, sha256=sha, library_path=f"r1/{rel}", size=100
    )
