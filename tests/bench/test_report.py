"""The targets table of docs/benchmarks.md."""

from __future__ import annotations

from bench.report import ratio_text


def test_borderline_ratios_show_a_third_decimal() -> None:
    """A ratio that two decimals would round onto its target shows three, so "0.80×" never stands next
    to a miss; others keep two."""
    assert ratio_text(0.7972, 0.8) == "0.797×"
    assert ratio_text(1.1487, 1.15) == "1.149×"
    assert ratio_text(0.8, 0.8) == "0.80×"
    assert ratio_text(0.6834, 0.8) == "0.68×"
