"""rename_noreplace (mediasyncd/libc.py) and the landing that uses it: a file at the target is never
replaced, whether the kernel refuses it (renameat2 RENAME_NOREPLACE) or the fallback's check sees it."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mediasyncd import libc
from mediasyncd.errors import UnsafePathError
from mediasyncd.libc import rename_noreplace
from mediasyncd.transfer.landing import Arrival, Library, Plan
from tests.helpers import make_env, once
from tests.sshd import SshServer


def _einval(*_args: object) -> int:
    ctypes.set_errno(errno.EINVAL)  # what NFS or SMB answer: RENAME_NOREPLACE not supported
    return -1


class _Fallback:
    """A C library whose renameat2 the filesystem does not support."""

    renameat2 = staticmethod(_einval)


WAYS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "renameat2": lambda mp: None,
    "unsupported by the filesystem": lambda mp: mp.setattr(libc, "_LIBC", _Fallback()),
    "no renameat2 in the C library": lambda mp: mp.setattr(libc, "_LIBC", None),
}


@pytest.fixture(params=list(WAYS))
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    WAYS[request.param](monkeypatch)
    return str(request.param)


def test_the_c_library_here_has_renameat2() -> None:
    assert getattr(libc._LIBC, "renameat2", None) is not None  # else the first case tests the fallback


def test_a_free_target_is_renamed_into(tmp_path: Path, way: str) -> None:
    src, dst = tmp_path / "partial", tmp_path / "a.png"
    src.write_bytes(b"new")
    rename_noreplace(src, dst)
    assert dst.read_bytes() == b"new" and not src.exists()


@pytest.mark.parametrize("occupant", ["file", "dangling symlink", "folder"])
def test_an_occupied_target_is_left_alone(tmp_path: Path, way: str, occupant: str) -> None:
    src, dst = tmp_path / "partial", tmp_path / "a.png"
    src.write_bytes(b"new")
    if occupant == "file":
        dst.write_bytes(b"theirs")
    elif occupant == "dangling symlink":
        dst.symlink_to(tmp_path / "nowhere")
    else:
        dst.mkdir()
    with pytest.raises(FileExistsError):
        rename_noreplace(src, dst)
    assert src.read_bytes() == b"new"
    assert os.path.lexists(dst)
    if occupant == "file":
        assert dst.read_bytes() == b"theirs"


def test_another_error_is_raised_as_it_is(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        rename_noreplace(tmp_path / "missing", tmp_path / "a.png")


def test_a_file_that_appears_after_the_check_is_not_overwritten_by_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the check alone loses: a file written at the target between the check and the rename."""
    library = Library(tmp_path / "lib", 0o644, 0o755)
    (tmp_path / "lib" / "r").mkdir(parents=True)
    partial = tmp_path / "lib" / "partial"
    partial.write_bytes(b"ours")
    target = tmp_path / "lib" / "r" / "a.png"
    target.write_bytes(b"theirs")  # already there, but the check below does not see it
    real_lexists = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: False if Path(p) == target else real_lexists(p))
    with pytest.raises(UnsafePathError, match="not overwriting"):
        library.land(partial, "r/a.png", 1_700_000_000.0)
    assert target.read_bytes() == b"theirs"
    assert partial.read_bytes() == b"ours"


def test_a_file_written_at_the_target_during_landing_stays_and_ours_lands_beside_it_on_retry(
    tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the real sshd: another program writes `a.png` into the library after landing planned that
    name and before its rename. Its file stays; the pass fails that file, the next one lands it as
    `a~<sha8>.png`."""
    env = make_env(tmp_path, sshd)
    env.write("a.png", b"ours" * 1000)
    theirs = env.library / "r1" / "a.png"
    real_plan = Library.plan_batch

    def plan_then_someone_writes(self: Library, arrivals: list[Arrival]) -> list[Plan | Exception]:
        plans = real_plan(self, arrivals)
        if not theirs.exists():
            theirs.parent.mkdir(parents=True, exist_ok=True)
            theirs.write_bytes(b"theirs")
        return plans

    monkeypatch.setattr(Library, "plan_batch", plan_then_someone_writes)
    assert once(env) == 1
    assert env.landed() == {"a.png": b"theirs"}
    assert env.rows("SELECT rel, state, last_error FROM files")[0][:2] == ("a.png", "failed")

    monkeypatch.setattr(Library, "plan_batch", real_plan)
    assert once(env) == 0
    landed = env.landed()
    assert landed.pop("a.png") == b"theirs"
    (beside,) = landed
    assert beside.startswith("a~") and landed[beside] == b"ours" * 1000
