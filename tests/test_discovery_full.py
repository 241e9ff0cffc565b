"""The discovery file on a full disk: writing it raises (the daemon's `try_write` logs it and runs on) and leaves no
temporary behind (found by bench/faults disk: a daemon started on a full state disk died with a
traceback here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediasyncd import discovery
from tests.helpers import small_filesystem


def test_a_full_disk_raises_and_leaves_no_temporary(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with small_filesystem(state, "1m"):
        with (state / "filler").open("wb") as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        with pytest.raises(OSError):
            discovery.write(state, "127.0.0.1", 8765, "test")
        assert discovery.try_write(state, "127.0.0.1", 8765, "test") is None  # what the daemon calls
        assert sorted(p.name for p in state.iterdir()) == ["filler"]
