"""Config: property-based fuzzing (hypothesis) of the TOML config, the CLI's exit status on broken
configs, and SIGHUP with a broken config while the daemon runs.

- in-process, as `config check` loads it: a valid config with one key set to a wrong type, an absurd size
  or duration, an unknown key, a duplicate remote name, or non-UTF-8 bytes (tests/config_fuzz.py): each
  is accepted when valid or rejected naming its key path, never with another exception;
- a sample of the rejected ones through `mediasyncd config check` and `mediasyncd run` as child
  processes: exit 78, no traceback;
- `mediasyncd run` on a valid config, then SIGHUP after writing a broken config, repeatedly: the daemon
  stays up on the old config and says so.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from bench.faults.report import Figure, Mode, Section
from bench.faults.secutil import cli
from tests.config_fuzz import MUTATIONS, Mutation, judge, render
from tests.helpers import free_port, start_daemon, stop, write_config

TITLE = "Config: fuzzed TOML, broken configs at start and on SIGHUP"
PROMISE = (
    "borgmatic validates the whole config and reports every error with its path; systemd's EX_CONFIG (78) "
    "stops restarts; nginx and PostgreSQL keep the running config when a reload's config is invalid."
)


def _fuzz(work: Path, examples: int) -> tuple[int, int, int, int, list[tuple[Mutation, bytes]]]:
    """(cases, crashes, rejections without the key path, accepted, some rejected configs)."""
    counts = {"cases": 0, "crashed": 0, "unnamed": 0, "accepted": 0}
    rejected: list[tuple[Mutation, bytes]] = []
    crashes: list[str] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,  # the same cases on every run: the figures can be reproduced
        suppress_health_check=list(HealthCheck),
    )
    @given(MUTATIONS)
    def case(mutation: Mutation) -> None:
        counts["cases"] += 1
        path = work / "fuzz.toml"
        data = render(work, mutation)
        path.write_bytes(data)
        verdict = judge(path, mutation)
        counts["crashed"] += verdict.crashed is not None
        counts["unnamed"] += verdict.unnamed
        counts["accepted"] += verdict.accepted
        if verdict.crashed:
            crashes.append(verdict.crashed)
        if verdict.unnamed or verdict.crashed:
            with (work / "findings.txt").open("a") as fh:
                fh.write(f"{mutation!r} -> {verdict!r}\n")
        if not verdict.accepted and verdict.crashed is None and len(rejected) < 200:
            rejected.append((mutation, data))

    case()
    return counts["cases"], counts["crashed"], counts["unnamed"], counts["accepted"], rejected


def _cli_cases(work: Path, rejected: list[tuple[Mutation, bytes]], n: int) -> tuple[int, int, int]:
    """(configs run, exits other than 78, tracebacks) over `config check` and `run`."""
    kinds: dict[str, list[bytes]] = {}
    for mutation, data in rejected:
        kinds.setdefault(mutation.kind + mutation.key, []).append(data)
    sample = [group[0] for group in kinds.values()][:n]
    wrong = tracebacks = 0
    for i, data in enumerate(sample):
        path = work / f"cli-{i}.toml"
        path.write_bytes(data)
        commands = [["config", "check", "--config", str(path)]]
        if i % 3 == 0:
            commands.append(["run", "--config", str(path)])
        for args in commands:
            ran = cli(args, timeout=30)
            wrong += ran.status != 78
            tracebacks += ran.traceback
    return len(sample), wrong, tracebacks


def _status(listen: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://{listen}/status", timeout=2) as resp:
            doc: dict[str, object] = json.load(resp)
            return doc
    except OSError:
        return None


def _sighup(work: Path, rejected: list[tuple[Mutation, bytes]], times: int) -> tuple[int, int, int, int]:
    """(SIGHUPs sent, rejections logged, times the daemon was down or lost its config, reloads that
    applied a broken config)."""
    src = work / "src"
    src.mkdir()
    library = work / "library"
    library.mkdir()
    listen = f"127.0.0.1:{free_port()}"
    config = work / "daemon.toml"
    write_config(
        config,
        library,
        work / "state",
        [{"name": "folder", "transport": "local", "roots": [str(src)]}],
        daemon={"status_listen": listen},
    )
    good = config.read_bytes()
    log = work / "daemon.log"
    proc = start_daemon(config, log)
    down = applied = sent = 0
    try:
        deadline = time.monotonic() + 30
        while _status(listen) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(times):
            config.write_bytes(rejected[i % len(rejected)][1])
            before = log.read_bytes().count(b"reload rejected")
            os.kill(proc.pid, signal.SIGHUP)
            sent += 1
            deadline = time.monotonic() + 10
            while log.read_bytes().count(b"reload rejected") == before and time.monotonic() < deadline:
                time.sleep(0.05)
            status = _status(listen)
            remotes = status.get("remotes") if status else None
            if proc.poll() is not None or not isinstance(remotes, list):
                down += 1
            elif [r.get("name") for r in remotes if isinstance(r, dict)] != ["folder"]:
                applied += 1
        config.write_bytes(good)
    finally:
        stop(proc)
    rejections = log.read_bytes().count(b"reload rejected")
    return sent, rejections, down, applied


def run(mode: Mode, work: Path) -> Section:
    quick = mode is Mode.QUICK
    cases, crashed, unnamed, accepted, rejected = _fuzz(work, 300 if quick else 3000)
    ran, wrong_exit, tracebacks = _cli_cases(work, rejected, 4 if quick else 30)
    findings = (
        (work / "findings.txt").read_text().splitlines()[:3] if (work / "findings.txt").exists() else []
    )
    (work / "daemon").mkdir()
    hups, rejections, down, applied = _sighup(work / "daemon", rejected, 10 if quick else 50)
    return Section(
        TITLE,
        PROMISE,
        cases,
        [
            Figure.zero("fuzzed configs that raised anything but a config error", crashed),
            Figure.zero("rejections that did not name the broken key", unnamed),
            Figure.info("fuzzed configs (hypothesis)", cases),
            Figure.info("of which valid and accepted", accepted),
            Figure.zero(f"broken configs whose `config check`/`run` exit was not 78 (of {ran})", wrong_exit),
            Figure.zero("tracebacks printed by the CLI", tracebacks),
            Figure.at_least("SIGHUPs with a broken config", hups, 10 if quick else 50),
            Figure.at_least("reloads rejected and logged", rejections, hups),
            Figure.zero("times the daemon was down or lost its running config", down),
            Figure.zero("broken configs applied by a reload", applied),
        ],
        [
            "Mutations: one key of a valid config (an SSH, a local and an exec remote) set to a wrong type, an absurd "
            "size or duration (400-digit numbers, nan, inf, negative), an unknown key, a duplicate remote "
            "name, or non-UTF-8 bytes; generated by hypothesis (tests/config_fuzz.py).",
            'Found and fixed: a 400-digit size (`bwlimit = "999…9TiB"`) raised OverflowError out of '
            "`config check` (a traceback); `nan`, `inf` and 10^17-day durations, sizes past 2^63 - 1 and "
            "counts such as `concurrency = 10^11` were accepted. Durations are now at most 100 years, sizes "
            "at most 2^63 - 1, counts at most 1,000,000 (tests/test_config_fuzz.py).",
            'Found and fixed: a NUL character in a path (`library = "\\u0000"`) raised ValueError (embedded '
            "null byte) out of `config check`, a traceback; NUL is now refused in every string, root, glob and "
            "command word with the key's path. And `library = \"/\"` was reported at the root's key alone "
            "(`remotes[1].roots: … inside the library '/'`); the problem now names `daemon.library` too.",
            "SIGHUP: `mediasyncd run` with a local remote; each round writes one of the rejected configs, "
            "sends SIGHUP, waits for the `reload rejected` log line and reads /status.",
            *(f"Case to look at: `{line}`" for line in findings),
        ],
    )
