"""The PostgreSQL sink against a real server: its schema, idempotent batches, upserts that never clear
what another event wrote, poison data rejected, an outage reported as such."""

from __future__ import annotations

import pytest

from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import EventRejected, SinkUnavailable
from mediasyncd.sinks.pg_rows import file_row
from mediasyncd.sinks.postgres import PostgresSink
from tests.sinks.conftest import Pg
from tests.sinks.envelopes import envelope, processed, purged, synced

SHA = "ab" * 32


def sink(pg: Pg) -> PostgresSink:
    return PostgresSink(SinkConfig(name="db", type="postgresql", dsn=pg.dsn, schema=pg.schema))


def test_file_rows_carry_only_what_their_event_knows() -> None:
    """file_synced: size, mtime, landed_at; file_processed: the summary; other events: no row."""
    row = dict(zip(("remote", "path", "sha256"), file_row(synced(1, 7, "a.png", SHA)) or (), strict=False))
    assert row == {"remote": "r1", "path": "a.png", "sha256": SHA}
    full = file_row(processed(2, 7, "a.png", SHA))
    assert full is not None and "sdxl" in full and 30 in full and None in full
    assert file_row(envelope(3, "sync_complete", None, landed=1)) is None
    assert file_row(envelope(4, "file_failed", "a.png", file_id=7, sha256=None, library_path=None)) is None
    odd = file_row(processed(5, 7, "a.png", SHA) | {"data": {"sha256": SHA, "steps": "many", "seed": "x"}})
    assert odd is not None  # values that do not fit their column are left out, not fatal


async def test_a_batch_lands_in_both_tables_and_redelivery_changes_nothing(pg: Pg) -> None:
    """Events once each by id; one files row per remote+path+sha256 with the metadata columns."""
    s = sink(pg)
    batch = [synced(1, 7, "a.png", SHA), processed(2, 7, "a.png", SHA), synced(3, 8, "b.png", "cd" * 32)]
    await s.open()
    await s.deliver(batch)
    await s.deliver(batch)
    await s.close()
    assert pg.query("SELECT id, type FROM mediasyncd_events ORDER BY id") == [
        ["1", "file_synced"], ["2", "file_processed"], ["3", "file_synced"],
    ]  # fmt: skip
    rows = pg.query(
        "SELECT path, sha256, size, generator, prompt, model, seed, steps, cfg, width, height, "
        "metadata->>'sampler', library_path, landed_at IS NOT NULL, processed_at IS NOT NULL "
        "FROM mediasyncd_files ORDER BY path"
    )
    assert rows[0] == [
        "a.png", SHA, "100", "a1111", "a red fox", "sdxl", "1234567890123", "30", "7.5", "1024", "768",
        "Euler a", "r1/a.png", "t", "t",
    ]  # fmt: skip
    assert rows[1][:3] == ["b.png", "cd" * 32, "100"] and rows[1][3] is not None
    assert pg.query(
        "SELECT payload->>'type', payload->'data'->>'file_id' FROM mediasyncd_events WHERE id = 2"
    ) == [["file_processed", "7"]]


async def test_a_late_event_never_clears_what_another_wrote(pg: Pg) -> None:
    """file_processed first, then file_synced and file_purged: every column set stays set."""
    s = sink(pg)
    await s.deliver([processed(5, 7, "a.png", SHA)])
    await s.deliver([synced(2, 7, "a.png", SHA)])
    await s.deliver([purged(9, 7, "a.png", SHA)])
    await s.close()
    (row,) = pg.query(
        "SELECT prompt, size, landed_at IS NOT NULL, processed_at IS NOT NULL, purged_at IS NOT NULL, "
        "last_event_id FROM mediasyncd_files"
    )
    assert row == ["a red fox", "100", "t", "t", "t", "9"]


async def test_the_schema_is_versioned_and_migrating_twice_is_harmless(pg: Pg) -> None:
    """A second sink opening the same schema finds it migrated; the prompt full-text index works."""
    first, second = sink(pg), sink(pg)
    await first.open()
    await second.open()
    await second.deliver([processed(1, 7, "a.png", SHA, prompt="a lighthouse at dusk")])
    await first.close()
    await second.close()
    assert pg.query("SELECT version FROM mediasyncd_schema") == [["1"]]
    hits = pg.query(
        "SELECT path FROM mediasyncd_files WHERE prompt_tsv @@ plainto_tsquery('english', 'lighthouses')"
    )
    assert hits == [["a.png"]]
    assert pg.query(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'mediasyncd_files_prompt'"
    ) == [["1"]]


async def test_poison_data_is_rejected_not_an_outage(pg: Pg) -> None:
    """A NUL in a prompt (SQLSTATE class 22) rejects the batch; nothing of it is written."""
    s = sink(pg)
    with pytest.raises(EventRejected, match="22"):
        await s.deliver([synced(1, 7, "a.png", SHA), processed(2, 7, "a.png", SHA, prompt="bad\x00byte")])
    await s.deliver([synced(1, 7, "a.png", SHA)])
    await s.close()
    assert pg.query("SELECT id FROM mediasyncd_events") == [["1"]]


async def test_a_stopped_server_is_an_outage(pg: Pg) -> None:
    """Server down: SinkUnavailable (connect or mid-connection); back up, the same sink delivers."""
    s = sink(pg)
    await s.open()
    pg.server.stop()
    with pytest.raises(SinkUnavailable):
        await s.deliver([synced(1, 7, "a.png", SHA)])
    with pytest.raises(SinkUnavailable, match="connect"):
        await s.deliver([synced(1, 7, "a.png", SHA)])
    pg.server.start()
    await s.deliver([synced(1, 7, "a.png", SHA)])
    await s.close()
    assert pg.query("SELECT id FROM mediasyncd_events") == [["1"]]


async def test_several_events_of_one_file_in_one_batch(pg: Pg) -> None:
    """processed, synced and purged of one file in one batch: one row, every column set, the newest id."""
    s = sink(pg)
    await s.deliver([synced(1, 7, "a.png", SHA), processed(2, 7, "a.png", SHA), purged(3, 7, "a.png", SHA)])
    await s.deliver([processed(4, 7, "a.png", SHA, prompt="again"), synced(5, 7, "a.png", SHA)])
    await s.close()
    (row,) = pg.query(
        "SELECT prompt, size, model, landed_at IS NOT NULL, purged_at IS NOT NULL, last_event_id FROM mediasyncd_files"
    )
    assert row == ["again", "100", "sdxl", "t", "t", "5"]
