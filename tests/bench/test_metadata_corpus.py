"""A small run of the metadata accuracy corpus (`python -m bench.metadata_corpus`): every writer, the real
`mediasyncd inspect --json` and exiftool 13, the issue-19 targets asserted."""

from __future__ import annotations

from pathlib import Path

from bench import metadata_corpus
from bench.corpus_common import Truth
from bench.corpus_writers import WRITERS


def test_the_corpus_meets_the_accuracy_targets(tmp_path: Path) -> None:
    """20+ tools, >= 97 % of fields right, 0 crashes, every sidecar read back by exiftool."""
    result = metadata_corpus.run(tmp_path, per_writer=2, seed=1919)
    tools = {tool for tool, _, _, _ in WRITERS}
    assert len(tools) >= 20 and len(result.tools) == len(WRITERS)
    assert result.total.files == 2 * len(WRITERS)
    misses = [miss for tally in result.tools.values() for miss in tally.misses]
    assert result.total.percent >= 97.0, misses
    assert result.crashes == []
    assert result.sidecars > 0.8 * result.total.files
    assert result.sidecars_read == result.sidecars, result.sidecar_failures


def test_a_wrong_or_invented_value_counts_against_the_figure(tmp_path: Path) -> None:
    """The scorer compares with the writer's truth: a wrong seed and an invented model are misses; fields
    neither written nor read are not counted."""
    sample = metadata_corpus.Sample("t", "PNG", tmp_path / "a.png", Truth(prompt="a cat", seed=7))
    tools, total = metadata_corpus.score(
        [sample], [{"path": str(sample.path), "prompt": "a cat", "seed": 8, "model": "made-up"}]
    )
    assert (total.scored, total.right) == (3, 1)
    assert tools["t (PNG)"].misses == [
        "a.png seed: want 7, got 8",
        "a.png model: want None, got 'made-up'",
    ]
    _, none = metadata_corpus.score([sample], [None])
    assert (none.scored, none.right) == (2, 0)


def test_the_report_names_every_figure(tmp_path: Path) -> None:
    result = metadata_corpus.run(tmp_path, per_writer=1, seed=3)
    lines = "\n".join(metadata_corpus.report(result, 1, 3))
    assert "overall:" in lines and "crashes:  0" in lines and "sidecars:" in lines
    assert "Save Image Plus (WebP)" in lines and "Midjourney (PNG)" in lines
