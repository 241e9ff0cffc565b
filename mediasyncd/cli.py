"""Command line: argv -> config -> logging -> asyncio.run(...). Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import tomli_w

from mediasyncd.cli_parser import parser
from mediasyncd.config import Config, find_config, load_config, minimal_config
from mediasyncd.errors import (
    EXIT_CONFIG,
    ConfigError,
    LibraryUnavailable,
    MediasyncError,
    StartupError,
    StateLockedError,
    StateUnavailable,
)
from mediasyncd.logging import configure_logging

NO_CONFIG = (
    "no config found (looked at --config, $MEDIASYNCD_CONFIG, /etc/mediasyncd/config.toml, "
    "~/.config/mediasyncd/config.toml).\n"
    "  Write one with:  mediasyncd config init\n"
    "  Or try it out:   mediasyncd demo"
)


# Commands whose stdout is a report of work done: with --quiet it is shown only when the run failed.
REPORTS = frozenset({"sync", "purge", "reprocess", "config"})


def entry() -> None:
    """The process (through launch.entry): the console script and `python -m mediasyncd`. main(), then
    exit with its code. Everything is frozen out of the cyclic GC first: the interpreter's collections at exit would
    otherwise walk every object the run made, ~35–50 ms of a nothing-new `sync --once` of ~0.5 s
    (docs/benchmarks.md); atexit handlers, log flushing and thread joins run as before."""
    code = main(whole_process=True)
    gc.freeze()
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, *, whole_process: bool = False) -> int:
    """`whole_process`: this process exits after the command (the console script), so a one-pass
    command may freeze its start-up out of the cyclic GC (`_sync`)."""
    args = parser().parse_args(argv)
    args.whole_process = whole_process
    quiet = getattr(args, "quiet", False)
    configure_logging(
        getattr(args, "log_level", "warning" if quiet else "info"), fmt=getattr(args, "log_format", "auto")
    )
    if quiet and args.command in REPORTS:
        return _only_on_failure(lambda: _main(args))
    return _main(args)


def _only_on_failure(command: Callable[[], int]) -> int:
    """Run `command` with stdout held back; print it only if the command did not succeed."""
    held = io.StringIO()
    with contextlib.redirect_stdout(held):
        code = command()
    if code != 0:
        sys.stdout.write(held.getvalue())
    return code


def _main(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"mediasyncd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StateLockedError, LibraryUnavailable, StateUnavailable) as exc:
        print(f"mediasyncd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "mediasyncd: interrupted (what landed stays landed; the next run resumes the rest)",
            file=sys.stderr,
        )
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command != "sync":
        gc.enable()  # off while the modules imported (launch.entry); `sync` turns it on itself (_sync)
    return COMMANDS[args.command](args)


def _run(args: argparse.Namespace) -> int:
    from mediasyncd.daemon import Daemon
    from mediasyncd.memory import limit_malloc_arenas

    config = _require_config(args)
    limit_malloc_arenas()

    async def run() -> None:
        await Daemon(config, exit_when_forced=True).run()

    asyncio.run(run())
    return 0


def _status(args: argparse.Namespace) -> int:
    from mediasyncd.config import daemon_section
    from mediasyncd.status_client import show_status

    path = _config_path(args)
    try:
        daemon = load_config(path).daemon
    except ConfigError as exc:
        # A reload the daemon rejected leaves the file broken while the daemon runs on: its [daemon]
        # table is enough to find it.
        found = daemon_section(path)
        if found is None:
            raise
        print(
            f"mediasyncd: {path} has {len(exc.problems)} error(s) (`mediasyncd config check` lists them); "
            "a running daemon keeps its last good config",
            file=sys.stderr,
        )
        daemon = found
    return asyncio.run(show_status(daemon, watch=args.watch, as_json=args.json))


def _demo(args: argparse.Namespace) -> int:
    from mediasyncd.demo.run import run_demo

    return asyncio.run(
        run_demo(Path(args.library), listen=args.listen, every=args.every, duration=args.duration)
    )


def _inspect(args: argparse.Namespace) -> int:
    from mediasyncd.pipeline.commands import inspect_main

    return inspect_main(args.files, args.json)


def _search(args: argparse.Namespace) -> int:
    from mediasyncd.pipeline.commands import search_main

    config = _require_config(args)
    return search_main(config.daemon.db_path, args.query, args.json, args.limit)


def _purge(args: argparse.Namespace) -> int:
    from mediasyncd.daemon_client import DaemonClient, purge_via_daemon
    from mediasyncd.purge.commands import purge_main

    config = _require_config(args)
    unknown = set(args.remotes) - {r.name for r in config.remotes}
    client = DaemonClient.running(config) if not unknown else None
    if client is not None:  # the daemon holds the state: ask it
        return purge_via_daemon(
            client,
            args.remotes,
            dry_run=args.dry_run,
            include_deleted_locally=args.include_deleted_locally,
            local_only=args.local_only,
        )
    return purge_main(
        config,
        args.remotes,
        dry_run=args.dry_run,
        include_deleted_locally=args.include_deleted_locally,
        local_only=args.local_only,
    )


def _reprocess(args: argparse.Namespace) -> int:
    from mediasyncd.pipeline.commands import reprocess_main

    config = _require_config(args)
    return reprocess_main(
        config.daemon.db_path, config.daemon.library, config.pipeline, args.stage, args.paths
    )


def _events(args: argparse.Namespace) -> int:
    from mediasyncd.events_cli import events_main, parse_types

    config = _require_config(args)
    if args.action is not None:
        from mediasyncd.sinks_cli import sinks_main

        return sinks_main(
            config, args.action, sink=args.sink, since=args.since, replay_all=args.all, as_json=args.json
        )
    try:
        types = parse_types(args.type)
    except ValueError as exc:
        print(f"mediasyncd events: {exc}", file=sys.stderr)
        return 2
    try:
        return events_main(
            config.daemon.db_path, since=args.since or 0, types=types, follow=args.follow, as_json=args.json
        )
    except MediasyncError as exc:
        print(f"mediasyncd events: {exc}", file=sys.stderr)
        return 1


def _workflow(args: argparse.Namespace) -> int:
    from mediasyncd.workflow_cli import run_main, status_main

    config = _require_config(args)
    if args.action == "status":
        return status_main(config, args.json)
    return run_main(config, first=args.first, last=args.last, dry_run=args.dry_run, paths=args.paths)


def _require_config(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args))


def _config_path(args: argparse.Namespace) -> Path:
    path = find_config(getattr(args, "config", None))
    if path is None:
        print(f"mediasyncd: {NO_CONFIG}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return path


def _sync(args: argparse.Namespace) -> int:
    from mediasyncd.sources import preload
    from mediasyncd.sync_once import sync_once

    if args.dry_run and not args.adopt:
        print("mediasyncd sync: --dry-run goes with --adopt (the only dry run a sync has)", file=sys.stderr)
        return 2
    config = _require_config(args)
    names = set(args.remotes)
    unknown = names - {r.name for r in config.remotes}
    if unknown:
        print(f"mediasyncd: unknown remote(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_CONFIG
    remotes = [r for r in config.remotes if not names or r.name in names]
    if args.dry_run:
        from mediasyncd.sync_once import adopt_dry_run

        gc.enable()
        return asyncio.run(adopt_dry_run(config, remotes))
    show = sys.stderr.isatty() and not args.no_progress and not getattr(args, "quiet", False)
    if getattr(args, "whole_process", False):
        # One pass, then exit: what start-up made (modules, asyncssh, config) lives until then. Frozen
        # out of the cyclic GC, it is not walked again by every collection during the pull: `sync --once`
        # of 2,000 files spent ~85 ms in collections, ~24 ms with it (docs/benchmarks.md, issue 21).
        preload(remotes)
        gc.freeze()
        from mediasyncd.memory import limit_malloc_arenas

        # Two malloc arenas, as `run` has, before the threads start: the peak RSS of a pull fell 76 -> 71
        # MB (MANY) and 65 -> 57 MB (PNG) at the same speed and CPU (bench.ab, docs/benchmarks.md).
        limit_malloc_arenas()
    gc.enable()  # launch.entry turned it off for the imports
    return asyncio.run(sync_once(config, remotes, show_progress=show))


def _config(args: argparse.Namespace) -> int:
    if args.config_command == "check":
        path = find_config(args.path or getattr(args, "config", None))
        if path is None:
            print(f"mediasyncd: {NO_CONFIG}", file=sys.stderr)
            return EXIT_CONFIG
        config = load_config(path)
        problems = list(config.warnings)
        if not args.connect:  # the doctor checks the library and the remotes itself
            if not config.daemon.library.is_dir():
                problems.append(
                    f"daemon.library: {config.daemon.library} does not exist (it is never created)"
                )
            if not config.remotes:
                problems.append("remotes: no [[remotes]] configured; nothing will be synced")
        for p in problems:
            print(f"warning: {p}", file=sys.stderr)
        if getattr(args, "service", False):
            from mediasyncd.service_paths import service_problems

            errors = service_problems(config, args.service_user)
            for e in errors:
                print(f"error: {e}", file=sys.stderr)
            if errors:
                return EXIT_CONFIG
        if args.connect:
            from mediasyncd.doctor import run_doctor

            return asyncio.run(run_doctor(config))
        print(f"{path}: OK ({len(config.remotes)} remote(s))")
        return 0
    target = Path(
        args.path or getattr(args, "config", None) or "~/.config/mediasyncd/config.toml"
    ).expanduser()
    if target.exists() and not args.force:
        print(f"mediasyncd: {target} exists; use --force to overwrite", file=sys.stderr)
        return 1
    state_dir = args.state_dir or (
        "/var/lib/mediasyncd" if os.geteuid() == 0 else "~/.local/state/mediasyncd"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(tomli_w.dumps(minimal_config(args.library, state_dir)), encoding="utf-8")
    print(f"wrote {target}; edit [[remotes]] (host, user, kind) and create {args.library}, then:")
    print(f"  mediasyncd config check {target}")
    return 0


def _hold(args: argparse.Namespace) -> int:
    from mediasyncd.daemon_client import DaemonClient, hold_via_daemon

    config = _require_config(args)
    unknown = set(args.remotes) - {r.name for r in config.remotes}
    if unknown:
        print(f"mediasyncd: unknown remote(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_CONFIG
    if args.purge and args.remotes:
        print(f"mediasyncd {args.command}: --purge takes no remotes", file=sys.stderr)
        return 2
    client = DaemonClient.running(config)
    if client is None:
        print(f"mediasyncd: no daemon running; `{args.command}` acts on a running daemon", file=sys.stderr)
        return 3
    names = None if args.purge else (args.remotes or [r.name for r in config.remotes])
    return hold_via_daemon(client, names, held=args.command == "pause")


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "sync": _sync,
    "status": _status,
    "config": _config,
    "doctor": _config,
    "demo": _demo,
    "inspect": _inspect,
    "search": _search,
    "purge": _purge,
    "reprocess": _reprocess,
    "events": _events,
    "workflow": _workflow,
    "pause": _hold,
    "resume": _hold,
}
