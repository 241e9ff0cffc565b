"""The CLI functions: inspect, search and reprocess print what users read and return the exit code."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediasyncd.pipeline.commands import inspect_main, reprocess_main, search_main
from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.record import JSON_KEYS
from mediasyncd.pipeline.runner import Pipeline
from tests.pipeline import samples, samples_apps
from tests.pipeline.conftest import sha256_of


def test_inspect_json_one_compact_line_per_argument_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints one compact object per argument, in order, every key present."""
    files = [samples.comfyui_png(tmp_path / "b.png"), samples.forge_png(tmp_path / "a.png")]
    assert inspect_main([str(f) for f in files], as_json=True) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["path"] for line in lines] == [str(f) for f in files]
    assert all(tuple(json.loads(line)) == JSON_KEYS for line in lines)
    assert all(", " not in line.split('"raw"')[0] or '", "' not in line for line in lines)
    assert json.loads(lines[1])["generator"] == "forge"


def test_inspect_json_includes_failures_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable file still gets its line (with `error`) and the exit code is 1."""
    (tmp_path / "empty.png").write_bytes(b"")
    good = samples.forge_png(tmp_path / "good.png")
    assert inspect_main([str(tmp_path / "empty.png"), str(good)], as_json=True) == 1
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (first["error"], first["generator"], first["loras"], first["raw"]) == (
        "empty file (0 bytes)",
        None,
        [],
        {},
    )
    assert second["error"] is None


def test_inspect_no_metadata_is_not_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file without metadata exits 0 and says "no metadata"."""
    assert inspect_main([str(samples.png(tmp_path / "plain.png"))], as_json=False) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'plain.png'}: no metadata")


def test_inspect_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json the record is printed as labelled lines."""
    inspect_main([str(samples.forge_png(tmp_path / "a.png"))], as_json=False)
    out = capsys.readouterr().out
    assert "  Sampler: DPM++ 2M\n  Scheduler: Karras\n" in out and "  LoRA: detail_tweaker (0.8)" in out


async def process_all(db_path: Path, library: Path) -> list[Path]:
    db_path.parent.mkdir(exist_ok=True)
    files = [samples_apps.swarmui_png(library / "fox.png"), samples.forge_png(library / "cat.png")]
    pipeline = Pipeline(db_path, library, PipelineOptions(workers=1))
    for path in files:
        await pipeline.process(path, sha256_of(path), remote="r", rel=path.name)
    await pipeline.aclose()
    return files


@pytest.fixture(autouse=True)
def quiet_structlog() -> Iterator[None]:
    """The pipeline logs through structlog's default (stdout) config; keep command output clean."""
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    yield
    structlog.reset_defaults()


async def test_search_main_prints_path_and_snippet(
    library: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """search prints each matching path with a snippet; --json gives one array of hit objects."""
    await process_all(db_path, library)
    assert search_main(db_path, "fox snow", as_json=False, limit=10) == 0
    assert capsys.readouterr().out == "fox.png\n    a red [fox] in [snow]\n"
    assert search_main(db_path, "fox", as_json=True, limit=10) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert (hit["path"], hit["generator"], hit["model"]) == ("fox.png", "swarmui", "flux1-dev-fp8")


async def test_search_main_no_match_exits_1(
    library: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No match exits 1, like grep: nothing on stdout and a line on stderr; `--json` prints `[]`."""
    await process_all(db_path, library)
    assert search_main(db_path, "zebra", as_json=False, limit=10) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "mediasyncd search: nothing matches 'zebra'\n")
    assert search_main(db_path, "zebra", as_json=True, limit=10) == 1
    assert capsys.readouterr().out == "[]\n"


def test_search_main_without_database_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing state DB is reported on stderr with exit code 2."""
    assert search_main(tmp_path / "none.db", "x", as_json=False, limit=5) == 2
    assert "no state database" in capsys.readouterr().err


async def test_reprocess_stage_reruns_only_that_stage(
    library: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--stage thumbnail re-runs the thumbnail stage only."""
    files = await process_all(db_path, library)
    capsys.readouterr()
    code = await _in_thread(
        reprocess_main, db_path, library, PipelineOptions(workers=1), "thumbnail", [str(files[0])]
    )
    assert code == 0
    with sqlite3.connect(db_path) as conn:
        runs = dict(conn.execute("SELECT stage, runs FROM pipeline_stages WHERE path = 'fox.png'").fetchall())
    assert runs == {"metadata": 1, "xmp": 1, "thumbnail": 2, "index": 1}
    assert (
        "fox.png: metadata done earlier, xmp done earlier, thumbnail done, index done earlier"
        in capsys.readouterr().out
    )


async def test_reprocess_everything_when_no_paths(
    library: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without paths every known file re-runs every stage."""
    await process_all(db_path, library)
    assert await _in_thread(reprocess_main, db_path, library, PipelineOptions(workers=1), None, []) == 0
    assert capsys.readouterr().out.endswith("2 file(s) reprocessed, 0 with errors\n")


def test_reprocess_unknown_stage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown stage name is refused with the list of stages."""
    assert reprocess_main(tmp_path / "s.db", tmp_path, PipelineOptions(), "resize", []) == 2
    assert "stages are: metadata, xmp, thumbnail, index" in capsys.readouterr().err


async def test_reprocess_missing_file_exits_1(
    library: Path, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that is not in the library is reported and the exit code is 1."""
    await process_all(db_path, library)
    assert (
        await _in_thread(reprocess_main, db_path, library, PipelineOptions(workers=1), None, ["nope.png"])
        == 1
    )
    assert "nope.png: no such file in the library" in capsys.readouterr().out


async def _in_thread(function: Callable[..., int], *args: Any) -> int:
    """reprocess_main runs its own event loop (as the CLI does), so call it off this test's loop."""
    return await asyncio.to_thread(function, *args)
