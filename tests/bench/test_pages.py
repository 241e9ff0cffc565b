"""bench/pages.py: the rate of writing new data, printed beside the benchmarks' load average."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.pages import new_data_rate, rate_line


def test_the_rate_is_measured_and_its_file_removed(tmp_path: Path) -> None:
    rate = new_data_rate(tmp_path, mib=4)
    assert 1 < rate < 1e6  # MB/s: written at all, and not faster than memory
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_there_fails_without_leaving_anything(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        new_data_rate(tmp_path / "gone", mib=1)


def test_the_line_gives_both_rates() -> None:
    line = rate_line(143.4, 1012.0)
    assert "143 MB/s at the start" in line and "1,012 MB/s at the end" in line
    assert "at the end" not in rate_line(143.4)
