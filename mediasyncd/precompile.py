"""`python -m mediasyncd.precompile [-q]`: compile what every start would otherwise compile again, as
`python -m compileall` does for the .pyc files: the methods of the package's dataclasses
(dataclass_code.py). scripts/setup runs it after installing; the benchmark after exporting a revision."""

from __future__ import annotations

import sys

from mediasyncd.dataclass_code import installed, prepare


def main(argv: list[str]) -> int:
    count = prepare()
    if "-q" not in argv:
        modules = len(installed().modules)
        print(f"{count} dataclass methods of {modules} modules kept in their __pycache__ folders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
