"""bench.ab's table: medians and each tool's best run, as ratios to rsync's."""

from __future__ import annotations

from bench.ab import table
from bench.tools import RunStats


def runs(*walls: float) -> list[RunStats]:
    return [RunStats(w, w * 0.8, 50.0, w * 1.5) for w in walls]


def test_medians_and_best_runs_are_each_compared_with_rsyncs() -> None:
    text = table({"A HEAD": runs(4.0, 2.0, 1.5), "rsync": runs(3.0, 1.8, 2.0)})
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()[2:]
    }
    # A: median 2.00 against rsync's 2.00; best 1.50 against rsync's 1.80
    assert rows["A HEAD"] == ["A HEAD", "2.00", "1.60", "50", "1.00×", "1.00×", "1.50", "1.20×"]
    assert rows["rsync"][-2:] == ["1.80", "1.00×"]
