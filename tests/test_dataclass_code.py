"""The dataclass code kept between runs (mediasyncd/dataclass_code.py): classes made from kept code behave
as classes compiled afresh, the file is only trusted when it is this interpreter's, and a start after
`python -m mediasyncd.precompile` compiles nothing."""

from __future__ import annotations

import builtins
import dataclasses
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediasyncd import dataclass_code
from mediasyncd.dataclass_code import MAGIC, CodeCache, read, write

ROOT = Path(__file__).parents[1]

SOURCE = """
from dataclasses import dataclass, field

@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 2
    tags: list[str] = field(default_factory=list)

@dataclass(order=True, kw_only=True)
class Job:
    name: str
    size: int = 0
"""


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[CodeCache]:
    """A fresh cache as dataclasses.py's exec() for the test (the package's own is put back after)."""
    fresh = CodeCache({})
    monkeypatch.setattr(dataclasses, "exec", fresh.exec, raising=False)
    yield fresh


def make(module_name: str) -> types.ModuleType:
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # dataclasses looks the module up for its globals
    try:
        exec(compile(SOURCE, f"<{module_name}>", "exec", dont_inherit=True), module.__dict__)
    finally:
        del sys.modules[module_name]
    return module


def behaviour(module: types.ModuleType) -> list[object]:
    point, job = module.Point, module.Job
    p = point(1, tags=["a"])
    frozen = False
    try:
        p.x = 5
    except dataclasses.FrozenInstanceError:
        frozen = True
    with pytest.raises(TypeError):
        job("positional")
    return [
        repr(p),
        p == point(1, 2, ["a"]),
        hash(point(1, 2, ())) == hash(point(1, 2, ())),
        frozen,
        point(1).tags is not point(1).tags,
        repr(job(name="a", size=3)),
        job(name="a") < job(name="b"),
        sorted(f.name for f in dataclasses.fields(job)),
        point.__init__.__annotations__,
    ]


def test_classes_from_kept_code_behave_as_freshly_compiled_ones(
    cache: CodeCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataclasses, "exec", builtins.exec)  # as if nothing were kept
    plain = behaviour(make("mediasyncd.probe"))
    assert plain[0] == "Point(x=1, y=2, tags=['a'])" and plain[3] is True

    first = CodeCache({})
    monkeypatch.setattr(dataclasses, "exec", first.exec)
    assert behaviour(make("mediasyncd.probe")) == plain
    assert first.compiled > 0
    write(tmp_path / "kept.marshal", first.codes)

    again = CodeCache(read(tmp_path / "kept.marshal"))
    monkeypatch.setattr(dataclasses, "exec", again.exec)
    assert behaviour(make("mediasyncd.probe")) == plain
    assert again.compiled == 0 and len(again.used) == len(first.codes)


def test_only_mediasyncd_and_structlog_dataclasses_are_kept(cache: CodeCache) -> None:
    make("tests.probe_elsewhere")
    assert cache.codes == {} and cache.compiled == 0
    make("structlog.probe")
    assert cache.compiled > 0


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a cache at all",
        MAGIC.replace(b"cpython", b"pypy") + b"\x00",
        MAGIC + b"\xff\xfe garbage",
        MAGIC + __import__("marshal").dumps(["a list"]),
        MAGIC + __import__("marshal").dumps({"text": "not code", 1: compile("1", "", "eval")}),
    ],
)
def test_a_damaged_or_foreign_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kept.marshal"
    path.write_bytes(content)
    assert read(path) == {}


def test_nothing_is_written_without_bytecode_writing_or_a_writable_folder(
    cache: CodeCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make("mediasyncd.probe_write")
    path = tmp_path / "__pycache__" / "kept.marshal"
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.save(path)
    assert not path.exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.save(path)
    assert read(path) == cache.codes

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: a path under a file cannot be made by anyone
        locked = tmp_path / "a-file"
        locked.write_text("")
    write(locked / "kept.marshal", cache.codes)  # no error
    assert not (locked / "kept.marshal").exists()


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "mediasyncd", tmp_path / "mediasyncd", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def _compiled_at_start(tree: Path) -> int:
    """How many dataclass methods a `sync` command's imports compile in a fresh process on `tree`."""
    probe = (
        "import dataclasses, mediasyncd.cli, mediasyncd.sync_once, mediasyncd.sources.ssh.source; "
        "print(dataclasses.exec.__self__.compiled)"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-P", "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_a_start_after_precompile_compiles_no_dataclass(tmp_path: Path) -> None:
    tree = _copy_package(tmp_path)
    assert _compiled_at_start(tree) > 100  # mediasyncd's and structlog's dataclasses, each time
    assert _compiled_at_start(tree) > 100  # PYTHONDONTWRITEBYTECODE: nothing kept by a run
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "mediasyncd.precompile"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(tree / "mediasyncd" / "__pycache__") in done.stdout
    assert _compiled_at_start(tree) == 0


def test_a_run_that_may_write_bytecode_keeps_what_it_compiled(tmp_path: Path) -> None:
    tree = _copy_package(tmp_path)
    before = _compiled_at_start(tree)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-P", "-c", "import mediasyncd.cli"], env=env, check=True)
    assert dataclass_code.read(next((tree / "mediasyncd" / "__pycache__").glob("dataclass_code.*.marshal")))
    assert 0 < _compiled_at_start(tree) < before  # what mediasyncd.cli made is kept; the rest is new
