"""Smoke test of bench/sinks_drain.py on a tiny backlog: it runs, drains both sinks and prints figures."""

from __future__ import annotations

import pytest

from bench.sinks_drain import main


def test_the_sinks_benchmark_runs_on_a_tiny_backlog(capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL drain, steady-state lag and both webhook modes each print their line."""
    assert main(["--events", "400", "--webhook-events", "20", "--lag-samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "postgresql: 400 events" in out and "rows: 400 events, 200 files" in out
    assert "lag median" in out and "webhook (batch 1): 20 events" in out and "webhook (batch 100)" in out
