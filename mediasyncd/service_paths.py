"""The paths the systemd service writes, and whether its user can write them.

The unit runs with `ProtectSystem=strict`: everything is read-only except its `StateDirectory=` and the
paths listed in `ReadWritePaths=`. `write_paths(config)` is the one list of those paths (the library; the
state directory when it is not the unit's own); `scripts/install-service` renders it into a drop-in with
`python -m mediasyncd.service_paths --config PATH --drop-in`, and `mediasyncd config check --service`
checks that the service user can write each of them (file mode bits and read-only mounts; ACLs are not
read).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import re
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediasyncd.config import Config, load_config
from mediasyncd.errors import EXIT_CONFIG, ConfigError

SERVICE_USER = "mediasyncd"
STATE_DIRECTORY = Path("/var/lib/mediasyncd")  # the unit's StateDirectory=: systemd creates and chowns it

_UNSAFE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\]")


@dataclass(frozen=True)
class WritePath:
    key: str  # the config key that names it
    path: Path
    may_be_missing: bool  # the library: a NAS may be mounted after the check


def write_targets(config: Config) -> list[WritePath]:
    """Every path the service writes besides its StateDirectory=, with the config key naming it."""
    daemon = config.daemon
    targets = [WritePath("daemon.library", daemon.library, may_be_missing=True)]
    if daemon.state_dir != STATE_DIRECTORY:
        targets.append(WritePath("daemon.state_dir", daemon.state_dir, may_be_missing=False))
    unique: dict[Path, WritePath] = {}
    for t in targets:
        unique.setdefault(t.path, t)
    return list(unique.values())


def write_paths(config: Config) -> list[Path]:
    """The paths the unit's ReadWritePaths= must list for this config."""
    return [t.path for t in write_targets(config)]


def drop_in(paths: Sequence[Path], source: Path) -> str:
    """The text of write-paths.conf: one `ReadWritePaths=-PATH` per path."""
    lines = [
        f"# Written by scripts/install-service from {source}; running it again rewrites this file.",
        "# ProtectSystem=strict makes the file system read-only; these are the paths mediasyncd writes",
        '# besides its StateDirectory=. "-": a missing path (an unmounted NAS) is reported by the daemon',
        "# rather than failing the service's namespace setup.",
        "[Service]",
    ]
    lines += [f"ReadWritePaths={unit_word('-' + str(p))}" for p in paths]
    return "\n".join(lines) + "\n"


def unit_word(value: str) -> str:
    """`value` as one word of a unit file setting: specifiers (%) escaped, quoted when it has spaces."""
    if _UNSAFE_IN_UNIT.search(value):
        raise ValueError(f"{value!r} contains a control character; a unit file cannot name it")
    value = value.replace("%", "%%")
    if not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------- can the user write it


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gids: frozenset[int]


def find_account(name: str) -> Account | None:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return Account(name, pw.pw_uid, frozenset(os.getgrouplist(name, pw.pw_gid)))


def allows(st: os.stat_result, who: Account, want: int) -> bool:
    """Whether the mode bits grant `who` every access in `want` (os.R_OK | os.W_OK | os.X_OK): the
    owner's bits to the owner, the group's to a member, the others' to everyone else."""
    if who.uid == 0:
        return True
    if st.st_uid == who.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in who.gids:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return (bits & want) == want


def _read_only_mount(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def access_problem(
    path: Path,
    who: Account,
    *,
    stat_path: Callable[[Path], os.stat_result] = os.stat,
    read_only: Callable[[Path], bool] = _read_only_mount,
) -> str | None:
    """Why `who` could not create files in the existing directory `path`, or None if it can."""
    path = Path(os.path.realpath(path))
    for parent in reversed(path.parents):
        st = stat_path(parent)
        if not allows(st, who, os.X_OK):
            return f"{who.name} cannot reach it: {parent} is {describe(st)}"
    st = stat_path(path)
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if not allows(st, who, os.W_OK | os.X_OK):
        return f"is not writable by {who.name}: it is {describe(st)}"
    if read_only(path):
        return "is on a read-only mount"
    return None


def describe(st: os.stat_result) -> str:
    """`owner root:root, mode 0755`."""
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"owner {owner}:{group}, mode {stat.S_IMODE(st.st_mode):04o}"


def service_problems(config: Config, user: str = SERVICE_USER) -> list[str]:
    """What would keep the service user from writing its paths, each with its config key. A missing
    library is not one (a NAS may mount late; `config check` warns about it); any other missing path is."""
    who = find_account(user)
    if who is None:
        return [f"service user: no user {user!r} on this machine (scripts/install-service creates it)"]
    problems = []
    for target in write_targets(config):
        try:
            if not target.path.exists():
                if not target.may_be_missing:
                    problems.append(
                        f"{target.key}: {target.path} does not exist; create it owned by {user} "
                        "(outside /var/lib/mediasyncd the service cannot create it)"
                    )
                continue
            why = access_problem(target.path, who)
        except OSError as exc:
            why = f"cannot be checked: {exc.strerror} (run the check as root)"
        if why is not None:
            problems.append(f"{target.key}: {target.path} {why}")
    return problems


# ------------------------------------------------------------------------------------ for the script


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mediasyncd.service_paths",
        description="Print the paths the service writes (ReadWritePaths=), one per line, for a config.",
    )
    p.add_argument("--config", required=True, metavar="PATH", type=Path)
    p.add_argument("--drop-in", action="store_true", help="print write-paths.conf instead")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
        paths = write_paths(config)
        text = drop_in(paths, args.config) if args.drop_in else "".join(f"{p}\n" for p in paths)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
