"""The first loopback benchmark, now a shortcut for `bench/run.py --links loopback --no-doc`.

    .venv/bin/python -m bench.loopback [bench.run options, e.g. --quick --repeat 3]

Prints the loopback table (mediasyncd, rsync and rclone over a loopback sshd) without touching
docs/benchmarks.md; datasets, scenarios and the report live in bench/datasets.py, bench/scenarios.py and
bench/report.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.run import main as run_main


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(["--links", "loopback", "--no-doc", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
