"""A pass's `sync_complete` comes once every file it claimed has an outcome, with the counts."""

from __future__ import annotations

from mediasyncd.state import FileRow, FileState
from mediasyncd.transfer.passes import Outcome, Passes


def _row(i: int, size: int = 10) -> FileRow:
    return FileRow(i, "r", "/root", f"{i}.png", size, 1.0, FileState.SEEN)


def test_the_event_comes_after_the_last_outcome_with_the_counts() -> None:
    """Three files: landed, failed, adopted; one event, after the third."""
    passes = Passes("r")
    rows = [_row(1), _row(2, 5), _row(3, 7)]
    assert passes.start("p1", 3, rows) == []
    assert passes.is_open("p1") and passes.of(2) == "p1"
    assert passes.resolve([(rows[0], Outcome.LANDED), (rows[1], Outcome.FAILED)]) == []
    (event,) = passes.resolve([(rows[2], Outcome.ADOPTED)])
    assert event.sync_id == "p1" and not passes.is_open("p1")
    assert {k: event.data[k] for k in ("new", "landed", "landed_bytes", "failed", "adopted", "adopted_bytes")} == {
        "new": 3, "landed": 1, "landed_bytes": 10, "failed": 1, "adopted": 1, "adopted_bytes": 7,
    }  # fmt: skip


def test_a_pass_that_claims_nothing_closes_at_once_and_only_if_it_found_something() -> None:
    passes = Passes("r")
    assert passes.start("quiet", 0, []) == []
    (event,) = passes.start("found", 2, [])
    assert event.sync_id == "found" and event.data["new"] == 2


def test_put_backs_only_count_and_an_interrupt_closes_what_is_open() -> None:
    """Put-backs complete a pass without counting; an interrupted session marks open passes so."""
    passes = Passes("r")
    passes.start("p1", 1, [_row(1)])
    passes.start("p2", 0, [_row(2)])
    assert passes.resolve([(_row(1), Outcome.PUT_BACK)])[0].data["landed"] == 0
    assert passes.interrupt_all() == []  # p2 found and moved nothing: no event
    passes.start("p3", 1, [_row(3)])
    (event,) = passes.interrupt_all()
    assert event.data["interrupted"] is True and not passes.is_open("p3")
