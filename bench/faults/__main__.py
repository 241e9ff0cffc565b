"""Run the fault-injection and security harness.

    .venv/bin/python -m bench.faults --quick           # what scripts/test runs (≤ ~3 minutes)
    .venv/bin/python -m bench.faults                   # full mode: writes docs/reliability.md
    .venv/bin/python -m bench.faults --only crash,disk # some scenarios

Exit status 1 when any target is missed (the report says which). Needs root (namespaces, mounts, sshd).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.faults.report import Figure, Mode, Section, markdown
from bench.faults.scenarios import SCENARIOS

REPO = Path(__file__).resolve().parent.parent.parent


def run_one(name: str, mode: Mode, work: Path) -> Section:
    module = importlib.import_module(f"bench.faults.{name}")
    started = time.monotonic()
    try:
        section: Section = module.run(mode, work)
    except Exception as e:  # a crashing scenario is a finding, not a harness crash
        section = Section(
            module.TITLE,
            module.PROMISE,
            0,
            [Figure("scenario crashed", f"{type(e).__name__}: {e}", "no crash", False)],
            [f"traceback, innermost last: {where}" for where in _where(e)],
        )
    section.seconds = time.monotonic() - started
    return section


def _where(e: BaseException, frames: int = 4) -> list[str]:
    """The innermost frames of `e`'s traceback, one line each: `file:line in function`."""
    stack = traceback.extract_tb(e.__traceback__)[-frames:]
    return [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in stack]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the suite's mode: fewer repetitions, no soak")
    p.add_argument("--only", help="comma-separated scenario names (default: all)")
    p.add_argument(
        "--out", type=Path, help="write the Markdown here (full mode default: docs/reliability.md)"
    )
    p.add_argument(
        "--soak-minutes",
        type=float,
        help="how long the full-mode soak runs (default 10; 60 for the docs); sets $MEDIASYNCD_SOAK_MINUTES",
    )
    args = p.parse_args(argv)
    if args.soak_minutes is not None:
        os.environ["MEDIASYNCD_SOAK_MINUTES"] = str(args.soak_minutes)
    mode = Mode.QUICK if args.quick else Mode.FULL
    names = SCENARIOS if not args.only else tuple(n for n in args.only.split(",") if n)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    sections = []
    with tempfile.TemporaryDirectory(prefix="mediasyncd-faults-") as tmp:
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            section = run_one(name, mode, work)
            sections.append(section)
            state = (
                "ok"
                if section.ok
                else "MISSED: " + "; ".join(f"{f.name}={f.value}" for f in section.failures())
            )
            print(f"{name}: {section.runs} run(s) in {section.seconds:.0f} s — {state}", file=sys.stderr)
    command = (
        "python -m bench.faults"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only else "")
        + (f" --soak-minutes {args.soak_minutes:g}" if args.soak_minutes is not None else "")
        + (f" --out {args.out}" if args.out else "")
    )
    text = markdown(sections, mode, command, datetime.datetime.now(datetime.UTC))
    out = args.out or (None if args.quick or args.only else REPO / "docs" / "reliability.md")
    if out is not None:
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0 if all(s.ok for s in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
