"""Command line: argv -> config -> logging -> asyncio.run(...). Nothing else lives here."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import tomli_w

from mediasyncd import __version__
from mediasyncd.config import Config, find_config, load_config, minimal_config
from mediasyncd.errors import (
    ConfigError,
    LibraryUnavailable,
    MediasyncError,
    StartupError,
    StateLockedError,
    StateUnavailable,
)
from mediasyncd.logging import FORMATS, configure_logging

EXIT_CONFIG = 78  # EX_CONFIG: systemd does not restart on it (RestartPreventExitStatus)
NO_CONFIG = (
    "no config found (looked at --config, $MEDIASYNCD_CONFIG, /etc/mediasyncd/config.toml, "
    "~/.config/mediasyncd/config.toml).\n"
    "  Write one with:  mediasyncd config init\n"
    "  Or try it out:   mediasyncd demo"
)


EXIT_CODES = """\
Log lines go to stderr, command output to stdout.

exit codes:
  0   ok
  1   a run did not complete: a file failed, a root is missing, no room on the library disk; or a
      check of `doctor` / `config check --connect` failed (see the output)
  2   usage error
  3   no daemon answering (status)
  78  configuration error (EX_CONFIG: the systemd unit does not restart on it)
  130 interrupted (Ctrl-C)"""
# Commands whose stdout is a report of work done: with --quiet it is shown only when the run failed.
REPORTS = frozenset({"sync", "purge", "reprocess", "config"})


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=argparse.SUPPRESS,
        help="least severe log lines shown (default info)",
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings and errors; a sync, purge or check that succeeds prints nothing (for cron)",
    )
    common.add_argument(
        "--log-format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="log lines (on stderr) for a person or as JSON; auto: console on a terminal (default auto)",
    )
    p = argparse.ArgumentParser(
        prog="mediasyncd",
        parents=[common],
        description="Pull Stable Diffusion Forge/A1111 and ComfyUI outputs from remote GPU containers into "
        "your library, verified and crash-safe, and clean the containers behind it.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mediasyncd {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", parents=[common], help="run the daemon in the foreground")

    s = sub.add_parser("sync", parents=[common], help="one sync pass (for cron users)")
    s.add_argument("--once", action="store_true", required=True, help="one pass, then exit")
    s.add_argument("remotes", nargs="*", metavar="REMOTE", help="only these remotes (default: all)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    s.add_argument(
        "--adopt",
        action="store_true",
        help="files already in the library with the remote's size, mtime and SHA-256 are recorded as "
        "landed, not fetched (always on); with --dry-run: only count them",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="with --adopt: say how many files would be adopted, fetched or mismatched; change nothing",
    )

    st = sub.add_parser("status", parents=[common], help="show the running daemon's status")
    st.add_argument("--watch", action="store_true", help="keep showing live progress")
    st.add_argument("--json", action="store_true", help="print the /status JSON")

    c = sub.add_parser("config", parents=[common], help="check or write a config")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser(
        "check",
        parents=[common],
        help=f"validate a config (exit {EXIT_CONFIG} on errors)",
        description=f"Validate a config: every problem with its key and line; exit {EXIT_CONFIG} on errors. "
        "With --connect (the same as `mediasyncd doctor`), then check this machine (library, state dir) and "
        "reach every remote: host key, roots, tools, python3, inotify limit, free space, purge permission; "
        "one line per check (ok, warn, FAIL); exit 1 if a check fails.",
    )
    check.add_argument("path", nargs="?", help="config to check (default: the search order)")
    check.add_argument("--connect", action="store_true", help="also reach every remote and check it")
    check.add_argument(
        "--service", action="store_true", help="also check that the service user can write every path it must"
    )
    check.add_argument("--service-user", default="mediasyncd", metavar="USER", help="(default: mediasyncd)")
    init = csub.add_parser("init", parents=[common], help="write a minimal valid config")
    init.add_argument("path", nargs="?", help="where (default: ~/.config/mediasyncd/config.toml)")
    init.add_argument("--library", default="/srv/media", help="library directory to put in the config")
    init.add_argument("--state-dir", default=None, help="state directory to put in the config")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    dr = sub.add_parser(
        "doctor", parents=[common], help="config check --connect: check this machine and reach every remote"
    )
    dr.add_argument("path", nargs="?", help="config to check (default: the search order)")
    dr.set_defaults(config_command="check", connect=True)

    d = sub.add_parser("demo", parents=[common], help="sync a live embedded demo container")
    d.add_argument("--library", default="./mediasyncd-demo", help="demo library (default ./mediasyncd-demo)")
    d.add_argument(
        "--listen",
        type=_loopback_listen,
        default="127.0.0.1:8765",
        help="status server address: PORT or HOST:PORT on loopback (default 127.0.0.1:8765)",
    )
    d.add_argument("--every", type=float, default=3.0, help="seconds between generated images")
    d.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: never)")

    i = sub.add_parser("inspect", parents=[common], help="print the generation metadata of files")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--json", action="store_true", help="one JSON object per line per file")

    se = sub.add_parser("search", parents=[common], help="search landed files by prompt, model, ...")
    se.add_argument("query")
    se.add_argument("--json", action="store_true")
    se.add_argument("--limit", type=int, default=20)

    pu = sub.add_parser("purge", parents=[common], help="delete verified old media from the remotes")
    pu.add_argument("remotes", nargs="*", metavar="REMOTE", help="only these remotes (default: all)")
    pu.add_argument(
        "--dry-run", action="store_true", help="show what would be deleted and why the rest stays"
    )
    pu.add_argument(
        "--include-deleted-locally",
        action="store_true",
        help="also delete remote copies of files you deleted from the library",
    )
    pu.add_argument(
        "--local-only", action="store_true", help="only the library's local retention; do not connect"
    )

    rp = sub.add_parser("reprocess", parents=[common], help="re-run media pipeline stages")
    rp.add_argument("--stage", default=None)
    rp.add_argument("paths", nargs="*", metavar="PATH")

    for verb, what in (("pause", "take no new files from"), ("resume", "take new files again from")):
        h = sub.add_parser(
            verb,
            parents=[common],
            help=f"{what} remotes (or hold/release scheduled purges) in the running daemon",
            description=f"{what.capitalize()} the named remotes (default: all) in the running daemon; with "
            "--purge, hold or release its scheduled purges instead. Files in flight finish. A pause lasts "
            "until `resume` or a restart of the daemon.",
        )
        h.add_argument("remotes", nargs="*", metavar="REMOTE", help="only these remotes (default: all)")
        h.add_argument("--purge", action="store_true", help="the purge schedule, not the remotes")

    wf = sub.add_parser("workflow", parents=[common], help="workflow stages: status, or run them now")
    wf.add_argument("action", choices=["status", "run"])
    wf.add_argument("--json", action="store_true", help="status: one JSON document")
    wf.add_argument("--from", dest="first", metavar="STAGE", help="run: start at this stage")
    wf.add_argument("--to", dest="last", metavar="STAGE", help="run: stop after this stage")
    wf.add_argument("--dry-run", action="store_true", help="run: show what would be done, change nothing")
    wf.add_argument("paths", nargs="*", metavar="PATH", help="run: only these library files or folders")

    ev = sub.add_parser(
        "events",
        parents=[common],
        help="print the event log (read-only, beside the daemon); sinks: status, retry, replay",
        description="Without ACTION: print the event log. `status`: every sink's position, lag, parked "
        "events and errors. `retry --sink NAME`: re-queue the sink's parked events. `replay --sink NAME "
        "(--since ID | --all)`: deliver again what came after ID, or everything (with a back-fill of the "
        "files whose events left the log). They work beside the running daemon.",
    )
    ev.add_argument("action", nargs="?", choices=["status", "retry", "replay"], help="a sink action")
    ev.add_argument("--sink", metavar="NAME", help="the sink (retry, replay)")
    ev.add_argument("--all", action="store_true", help="replay: the whole log and a back-fill")
    ev.add_argument("--since", type=int, default=None, metavar="ID", help="only events after this id")
    ev.add_argument("--follow", action="store_true", help="keep printing new events as they come")
    ev.add_argument(
        "--type", action="append", default=[], metavar="T[,T...]", help="only these event types (repeatable)"
    )
    ev.add_argument("--json", action="store_true", help="one JSON envelope per line, nothing else on stdout")
    return p


def _loopback_listen(value: str) -> str:
    """`--listen` of the demo: `8766` means 127.0.0.1:8766; a non-loopback address needs a token, which
    the demo does not set, so it is refused here rather than in the generated config."""
    from mediasyncd.config import is_loopback
    from mediasyncd.config_values import as_listen

    listen = f"127.0.0.1:{value}" if value.isdigit() else value
    try:
        as_listen(listen)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc.args[0].replace('must be', 'give PORT or')}") from None
    if not is_loopback(listen.rsplit(":", 1)[0].strip("[]")):
        raise argparse.ArgumentTypeError(f"the demo serves loopback only (127.0.0.1:PORT), got {value!r}")
    return listen


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    return COMMANDS[args.command](args)


def _run(args: argparse.Namespace) -> int:
    from mediasyncd.daemon import Daemon

    config = _require_config(args)

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

        return asyncio.run(adopt_dry_run(config, remotes))
    show = sys.stderr.isatty() and not args.no_progress and not getattr(args, "quiet", False)

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
