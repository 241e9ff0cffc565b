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

from mediasyncd.dataclass_code import MAGIC, CodeCache, cache_path, read, write

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
    fresh = CodeCache()
    monkeypatch.setattr(dataclasses, "exec", fresh.exec, raising=False)
    yield fresh


def make(module_name: str, folder: Path | None) -> types.ModuleType:
    """SOURCE as the module `module_name`, from a file in `folder` (None: a module without a file)."""
    module = types.ModuleType(module_name)
    if folder is not None:
        module.__file__ = str(folder / f"{module_name.rpartition('.')[2]}.py")
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
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(dataclasses, "exec", builtins.exec)  # as if nothing were kept
    plain = behaviour(make("mediasyncd.probe", tmp_path))
    assert plain[0] == "Point(x=1, y=2, tags=['a'])" and plain[3] is True

    first = CodeCache()
    monkeypatch.setattr(dataclasses, "exec", first.exec)
    assert behaviour(make("mediasyncd.probe", tmp_path)) == plain
    compiled = first.compiled
    assert compiled > 0
    assert first.save() == 1 and first.compiled == 0  # written: nothing left for the exit
    kept = read(cache_path(str(tmp_path / "probe.py")))
    assert len(kept) == compiled

    again = CodeCache()
    monkeypatch.setattr(dataclasses, "exec", again.exec)
    assert behaviour(make("mediasyncd.probe", tmp_path)) == plain
    assert again.compiled == 0 and again.modules["mediasyncd.probe"].used.keys() == kept.keys()
    assert again.save() == 0  # nothing new: nothing written


def test_only_files_of_mediasyncd_and_structlog_modules_are_kept(cache: CodeCache, tmp_path: Path) -> None:
    make("tests.probe_elsewhere", tmp_path)
    make("mediasyncd.probe_without_file", None)
    assert cache.modules == {} and cache.compiled == 0
    make("structlog.probe", tmp_path)
    assert list(cache.modules) == ["structlog.probe"] and cache.compiled > 0


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
    make("mediasyncd.probe_write", tmp_path)
    path = cache_path(str(tmp_path / "probe_write.py"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert cache.save() == 0
    assert not path.exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert cache.save() == 1
    assert read(path) == cache.modules["mediasyncd.probe_write"].used

    blocked = tmp_path / "a-file"  # a folder under a file cannot be made, by root either
    blocked.write_text("")
    write(blocked / "kept", cache.modules["mediasyncd.probe_write"].used)  # no error
    assert not (blocked / "kept").exists()


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
    assert "dataclass methods of" in done.stdout
    assert _compiled_at_start(tree) == 0


def test_a_run_that_may_write_bytecode_keeps_what_it_compiled(tmp_path: Path) -> None:
    tree = _copy_package(tmp_path)
    before = _compiled_at_start(tree)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-P", "-c", "import mediasyncd.cli"], env=env, check=True)
    assert any(read(p) for p in tree.glob("mediasyncd/**/__pycache__/*.dataclasses"))
    assert 0 < _compiled_at_start(tree) < before  # what mediasyncd.cli made is kept; the rest is new
