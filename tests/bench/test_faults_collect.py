"""docs/reliability.md put together from the harness's partial reports: every figure kept as it was."""

from __future__ import annotations

import datetime
from pathlib import Path

from bench.faults.collect import collect
from bench.faults.report import Figure, Mode, Section, markdown

NOW = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)


def test_the_parts_are_joined_with_their_commands_and_every_figure_unchanged(tmp_path: Path) -> None:
    crash = Section(
        "Crash", "rclone move deletes only after a checked copy", 20, [Figure.zero("files lost", 0)]
    )
    api = Section("API", "every route needs the token", 1, [Figure.zero("5xx answers", 3)])
    (tmp_path / "reliability-data.md").write_text(
        markdown([crash], Mode.FULL, "python -m bench.faults --only crash", NOW)
    )
    (tmp_path / "reliability-security.md").write_text(
        markdown([api], Mode.FULL, "python -m bench.faults --only api", NOW)
    )
    text = collect(tmp_path)
    assert text.startswith("# Reliability")
    assert (
        "| Crash | 20 | all targets met | 0 s | `python -m bench.faults --only crash`, 2026-11-30 |" in text
    )
    assert "| API | 1 | 1 target(s) missed | 0 s | `python -m bench.faults --only api`, 2026-11-30 |" in text
    assert "| files lost | 0 | 0 | yes |" in text and "| 5xx answers | 3 | 0 | **no** |" in text
    assert text.count("| scenario | runs |") == 1  # the parts' own summaries are in the one table
    assert text.count("# Reliability") == 1
