"""The service's write paths: which they are, the drop-in that grants them, and who can write them."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from mediasyncd.config import parse_config
from mediasyncd.service_paths import (
    Account,
    access_problem,
    allows,
    drop_in,
    find_account,
    service_problems,
    unit_word,
    write_paths,
)
from tests.helpers import MEDIASYNCD

NOBODY = "nobody"  # a user other than the one running the tests, without rights to their temp dirs
OWNER = Account("svc", 1000, frozenset({1000}))
MEMBER = Account("other", 1001, frozenset({1001, 2000}))
STRANGER = Account("stranger", 1002, frozenset({1002}))


def config(library: Path | str, state_dir: Path | str = "/var/lib/mediasyncd") -> str:
    return f'[daemon]\nlibrary = "{library}"\nstate_dir = "{state_dir}"\n'


def st(mode: int, uid: int = 1000, gid: int = 2000) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def test_write_paths_are_the_library_when_state_is_in_the_state_directory() -> None:
    """The default state dir is the unit's StateDirectory=: only the library needs ReadWritePaths=."""
    assert write_paths(parse_config(config("/srv/media"))) == [Path("/srv/media")]


def test_write_paths_add_a_state_dir_outside_var_lib_mediasyncd() -> None:
    """A state_dir elsewhere must be writable too, after the library."""
    paths = write_paths(parse_config(config("/mnt/nas/media", "/data/mediasyncd")))

    assert paths == [Path("/mnt/nas/media"), Path("/data/mediasyncd")]


def test_write_paths_name_a_path_once() -> None:
    """A state dir that is the library itself is listed once."""
    assert write_paths(parse_config(config("/data", "/data"))) == [Path("/data")]


def test_drop_in_lists_each_path_as_an_optional_read_write_path() -> None:
    """One `ReadWritePaths=-PATH` line per path under [Service], after a comment naming the source."""
    text = drop_in([Path("/srv/media"), Path("/data/state")], Path("/etc/mediasyncd/config.toml"))
    lines = text.splitlines()

    assert lines[0].startswith("# Written by scripts/install-service from /etc/mediasyncd/config.toml")
    assert lines[-3:] == ["[Service]", "ReadWritePaths=-/srv/media", "ReadWritePaths=-/data/state"]


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("-/srv/media", "-/srv/media"),
        ("-/srv/my media", '"-/srv/my media"'),
        ("-/srv/100%", "-/srv/100%%"),
        ('-/srv/a"b', '"-/srv/a\\"b"'),
        ("-/srv/a\\b", '"-/srv/a\\\\b"'),
    ],
)
def test_unit_word_escapes_specifiers_and_quotes_what_would_split(value: str, word: str) -> None:
    """% becomes %%; a value with spaces, quotes or backslashes is double-quoted, C-style escaped."""
    assert unit_word(value) == word


def test_unit_word_refuses_a_control_character() -> None:
    """A newline in a path cannot be written into a unit file."""
    with pytest.raises(ValueError, match="control character"):
        unit_word("-/srv/a\nb")


def test_systemd_reads_every_path_of_an_odd_drop_in_as_one_absolute_path(tmp_path: Path) -> None:
    """systemd-analyze verify finds no relative (mis-split) path in a drop-in for odd library names."""
    unit = tmp_path / "probe.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (tmp_path / "probe.service.d").mkdir()
    odd = [Path("/srv/my media"), Path('/srv/a "b" c'), Path("/srv/50% off"), Path("/srv/back\\slash x")]
    (tmp_path / "probe.service.d" / "write-paths.conf").write_text(drop_in(odd, Path("config.toml")))

    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)

    assert (r.returncode, r.stdout + r.stderr) == (0, "")


@pytest.mark.parametrize(
    ("who", "mode", "want", "allowed"),
    [
        (OWNER, 0o700, os.W_OK | os.X_OK, True),
        (OWNER, 0o070, os.X_OK, False),  # the owner gets the owner's bits, even when the group's allow
        (MEMBER, 0o750, os.X_OK, True),
        (MEMBER, 0o750, os.W_OK | os.X_OK, False),
        (MEMBER, 0o770, os.W_OK | os.X_OK, True),
        (STRANGER, 0o775, os.W_OK, False),
        (STRANGER, 0o777, os.W_OK | os.X_OK, True),
        (Account("root", 0, frozenset({0})), 0o000, os.W_OK | os.X_OK, True),
    ],
)
def test_allows_reads_the_owner_group_or_other_bits(
    who: Account, mode: int, want: int, allowed: bool
) -> None:
    """The kernel's rule for mode bits: owner's bits for the owner, group's for members, else others'."""
    assert allows(st(0o040000 | mode), who, want) is allowed


def _problem(tree: dict[str, os.stat_result], who: Account, read_only: str = "") -> str | None:
    """access_problem for /srv/media over a made-up file system: `tree` maps paths to their stat."""
    return access_problem(
        Path("/srv/media"), who, stat_path=lambda p: tree[str(p)], read_only=lambda p: str(p) == read_only
    )


def test_access_problem_names_an_ancestor_the_user_cannot_pass() -> None:
    """A 0700 parent owned by someone else: the user cannot reach the library inside it."""
    tree = {"/": st(0o040755, 0, 0), "/srv": st(0o040700, 0, 0), "/srv/media": st(0o040777)}

    why = _problem(tree, STRANGER)

    assert why is not None and why.startswith("stranger cannot reach it: /srv is owner root:root, mode 0700")


def test_access_problem_names_a_directory_the_user_cannot_write() -> None:
    """The library itself without write permission for the user."""
    tree = {"/": st(0o040755, 0, 0), "/srv": st(0o040755, 0, 0), "/srv/media": st(0o040755, 0, 0)}

    why = _problem(tree, STRANGER)

    assert why == "is not writable by stranger: it is owner root:root, mode 0755"


def test_access_problem_names_a_read_only_mount() -> None:
    """Mode bits that allow writing do not help on a read-only mount."""
    tree = {"/": st(0o040755, 0, 0), "/srv": st(0o040755, 0, 0), "/srv/media": st(0o040755)}

    why = _problem(tree, OWNER, read_only="/srv/media")

    assert why == "is on a read-only mount"


def test_access_problem_is_none_for_a_writable_directory(tmp_path: Path) -> None:
    """A real directory the running user owns is writable by that user."""
    me = find_account(pwd.getpwuid(os.getuid()).pw_name)

    assert me is not None and access_problem(tmp_path, me) is None


def test_access_problem_refuses_a_file() -> None:
    """A library that is a file is no directory to write into."""
    tree = {"/": st(0o040755, 0, 0), "/srv": st(0o040755, 0, 0), "/srv/media": st(0o100666)}

    assert _problem(tree, STRANGER) == "is not a directory"


def test_service_problems_skip_a_missing_library_but_not_a_missing_state_dir(tmp_path: Path) -> None:
    """A missing library may be a NAS mounting late; a missing state dir outside /var/lib is an error."""
    cfg = parse_config(config(tmp_path / "nas", tmp_path / "state"))

    problems = service_problems(cfg, NOBODY)

    assert problems == [
        f"daemon.state_dir: {tmp_path / 'state'} does not exist; create it owned by nobody "
        "(outside /var/lib/mediasyncd the service cannot create it)"
    ]


def test_service_problems_name_a_library_the_user_cannot_reach(tmp_path: Path) -> None:
    """The tests' temp directory is not the other user's: the library inside it is flagged, by key."""
    (tmp_path / "lib").mkdir()

    problems = service_problems(parse_config(config(tmp_path / "lib")), NOBODY)

    assert len(problems) == 1 and problems[0].startswith(f"daemon.library: {tmp_path / 'lib'} nobody cannot")


def test_service_problems_name_a_missing_user(tmp_path: Path) -> None:
    """No such user: one problem saying who creates it."""
    problems = service_problems(parse_config(config(tmp_path)), "no-such-user-mediasyncd")

    assert problems == [
        "service user: no user 'no-such-user-mediasyncd' on this machine (scripts/install-service creates it)"
    ]


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MEDIASYNCD, "config", "check", *args], capture_output=True, text=True, check=False)


def test_config_check_service_exits_78_when_the_user_cannot_write(tmp_path: Path) -> None:
    """`config check --service --service-user nobody` on a library nobody cannot reach: exit 78, by key."""
    (tmp_path / "lib").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path / "lib", tmp_path / "state"))
    (tmp_path / "state").mkdir()

    r = _check("--service", "--service-user", NOBODY, str(path))

    assert r.returncode == 78
    assert f"error: daemon.library: {tmp_path / 'lib'} nobody cannot reach it" in r.stderr
    assert f"error: daemon.state_dir: {tmp_path / 'state'} nobody cannot reach it" in r.stderr
    assert "OK" not in r.stdout


def test_config_check_service_passes_for_a_user_who_can_write(tmp_path: Path) -> None:
    """The same config checked for the user who owns the directories: OK, exit 0."""
    (tmp_path / "lib").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path / "lib"))

    r = _check("--service", "--service-user", pwd.getpwuid(os.getuid()).pw_name, str(path))

    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_config_check_without_service_does_not_check_the_user(tmp_path: Path) -> None:
    """Plain `config check` says nothing about who can write the library."""
    (tmp_path / "lib").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(config(tmp_path / "lib"))

    r = _check("--service-user", NOBODY, str(path))

    assert r.returncode == 0 and "error" not in r.stderr and "nobody" not in r.stderr


def _module(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mediasyncd.service_paths", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_module_prints_one_write_path_per_line(tmp_path: Path) -> None:
    """`python -m mediasyncd.service_paths --config PATH`: the paths, one a line."""
    path = tmp_path / "config.toml"
    path.write_text(config("/srv/media", "/data/state"))

    r = _module("--config", str(path))

    assert (r.returncode, r.stdout) == (0, "/srv/media\n/data/state\n")


def test_module_prints_the_drop_in(tmp_path: Path) -> None:
    """With --drop-in, the module prints write-paths.conf for the config."""
    path = tmp_path / "config.toml"
    path.write_text(config("/srv/media"))

    r = _module("--config", str(path), "--drop-in")

    assert r.returncode == 0 and r.stdout == drop_in([Path("/srv/media")], path)


def test_module_exits_78_on_an_invalid_config(tmp_path: Path) -> None:
    """An invalid config: the config error report on stderr, exit 78, nothing on stdout."""
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nlibrary = "relative"\n')

    r = _module("--config", str(path))

    assert (r.returncode, r.stdout) == (78, "") and "daemon.library" in r.stderr
