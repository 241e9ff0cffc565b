"""Host keys: a real sshd, then an impostor sshd with another host key on the same port (a man in the
middle, or a container recreated without anyone saying so).

- `host_key = "strict"` with the real key in known_hosts: the impostor is refused, the error names the
  change and how to accept a new key on purpose, nothing is pulled from it;
- `host_key = "accept-new"`: the first key is stored, once; the impostor is refused; the stored key stays
  the first one;
- a host missing from known_hosts under "strict": refused, with how to add it.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.faults.report import Figure, Mode, Section
from bench.faults.secutil import Ran, cli
from tests.helpers import remote_table, write_config
from tests.sshd import SshServer, start_sshd

TITLE = "Host keys: a changed key, accept-new, a man in the middle"
PROMISE = (
    "OpenSSH's StrictHostKeyChecking: `yes` refuses unknown and changed keys, `accept-new` learns the "
    "first key and refuses a changed one."
)


def _config(tmp: Path, server: SshServer, root: Path, **extra: object) -> Path:
    library = tmp / "library"
    library.mkdir(parents=True, exist_ok=True)
    return write_config(
        tmp / "config.toml", library, tmp / "state", [remote_table(server, "r1", root, **extra)]
    )


def _sync(config: Path) -> Ran:
    return cli(["sync", "--once", "--config", str(config)])


def _drop(root: Path, name: str) -> None:
    path = root / name
    path.write_bytes(os.urandom(2000))
    os.utime(path, (1_700_000_000, 1_700_000_000))


def _round(work: Path, n: int) -> dict[str, int]:
    tmp = work / f"round-{n}"
    root = tmp / "remote"
    root.mkdir(parents=True)
    counts = dict.fromkeys(
        (
            "real host refused",
            "impostor accepted (strict)",
            "impostor accepted (accept-new)",
            "refusals without how-to",
            "files pulled from an impostor",
            "learned keys other than the first",
            "unknown host accepted (strict)",
            "tracebacks",
        ),
        0,
    )
    _drop(root, "first.png")
    with start_sshd(tmp / "real") as real:
        strict = _config(tmp / "strict", real, root)
        learned_dir = tmp / "learn"
        learned_dir.mkdir()
        learn = _config(learned_dir, real, root, host_key="accept-new", known_hosts=str(tmp / "no-such-file"))
        unknown_dir = tmp / "unknown"
        unknown_dir.mkdir()
        unknown = _config(unknown_dir, real, root, known_hosts=str(tmp / "no-such-file"))
        for config in (strict, learn):
            ran = _sync(config)
            counts["real host refused"] += ran.status != 0
            counts["tracebacks"] += ran.traceback
        ran = _sync(unknown)
        counts["unknown host accepted (strict)"] += ran.status == 0
        counts["refusals without how-to"] += "ssh-keyscan" not in ran.err or "accept-new" not in ran.err
        counts["tracebacks"] += ran.traceback
        port, real_key = real.port, real.known_hosts.read_text().split()[2]
    known = learned_dir / "state" / "known_hosts"
    first = known.read_text().splitlines() if known.exists() else []
    _drop(root, "after.png")
    with start_sshd(tmp / "impostor", port=port) as impostor:
        for config, key in (
            (strict, "impostor accepted (strict)"),
            (learn, "impostor accepted (accept-new)"),
        ):
            ran = _sync(config)
            counts[key] += ran.status == 0
            counts["refusals without how-to"] += (
                "HOST KEY CHANGED" not in ran.err or "ssh-keygen -R" not in ran.err
            )
            counts["tracebacks"] += ran.traceback
            counts["files pulled from an impostor"] += (
                config.parent / "library" / "r1" / "after.png"
            ).exists()
        assert impostor.port == port
    after = known.read_text().splitlines() if known.exists() else []
    stored_ok = len(first) == 1 and after == first and real_key in first[0]
    counts["learned keys other than the first"] += not stored_ok
    return counts


def run(mode: Mode, work: Path) -> Section:
    rounds = 1 if mode is Mode.QUICK else 5
    totals: dict[str, int] = {}
    for n in range(rounds):
        for key, value in _round(work, n).items():
            totals[key] = totals.get(key, 0) + value
    figures = [Figure.zero(k, v) for k, v in totals.items()]
    return Section(
        TITLE,
        PROMISE,
        rounds,
        figures,
        [
            f"{rounds} round(s): a real OpenSSH sshd, then an impostor sshd with its own host key on the same "
            "loopback port; each config is tried with `mediasyncd sync --once` (a child process).",
            "A refusal must say what happened and how to accept a key on purpose: `ssh-keygen -R` for a "
            'changed key; `ssh-keyscan` or `host_key = "accept-new"` for an unknown one.',
        ],
    )
