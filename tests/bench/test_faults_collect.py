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


def test_a_scenario_run_again_later_replaces_the_earlier_one(tmp_path: Path) -> None:
    """A few scenarios re-run (not the hour of the others): their rows, sections and commands come from
    the re-run; the rest stay as they were, and the earlier part says which of its sections moved."""
    old_crash = Section("Crash", "checked copies", 100, [Figure.zero("files lost", 1)])
    soak = Section("Soak", "flat memory", 1, [Figure.zero("error lines", 0)])
    new_crash = Section("Crash", "checked copies", 100, [Figure.zero("files lost", 0)])
    (tmp_path / "reliability-data.md").write_text(
        markdown([old_crash, soak], Mode.FULL, "python -m bench.faults --only crash,soak", NOW)
    )
    later = NOW + datetime.timedelta(days=2)
    (tmp_path / "reliability-rerun.md").write_text(
        markdown([new_crash], Mode.FULL, "python -m bench.faults --only crash", later)
    )
    text = collect(tmp_path)
    assert (
        "| Crash | 100 | all targets met | 0 s | `python -m bench.faults --only crash`, 2026-12-02 |" in text
    )
    assert (
        "| Soak | 1 | all targets met | 0 s | `python -m bench.faults --only crash,soak`, 2026-11-30 |"
        in text
    )
    assert text.count("## Crash") == 1 and text.count("## Soak") == 1
    assert "| files lost | 0 | 0 | yes |" in text and "| files lost | 1 |" not in text
    assert "*Shown from a later run instead:* Crash." in text
    assert text.index("## Soak") < text.index("## Crash")  # each section under its own part's command
