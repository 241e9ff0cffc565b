"""docs/reliability.md from the harness's reports: the full run takes over an hour (100 kills, 20 link
faults with blackholes past the SSH keepalive, a soak), so it can be run in parts, each writing its own
report, and this puts them together without changing a figure.

    .venv/bin/python -m bench.faults --only crash,link,disk,soak --out docs/reliability-data.md
    .venv/bin/python -m bench.faults --only hostile,purge_race,hostkeys,config_fuzz,api --out docs/reliability-security.md
    .venv/bin/python -m bench.faults --only workflow --out docs/reliability-workflow.md
    .venv/bin/python -m bench.faults.collect     # -> docs/reliability.md

(A plain `python -m bench.faults` writes docs/reliability.md in one go instead.)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PARTS = ("reliability-data.md", "reliability-security.md", "reliability-workflow.md")
TITLE = "# Reliability: what breaks, and what mediasyncd does then"
PRODUCED = re.compile(r"Every figure below was produced by `([^`]+)` on (\d{4}-\d{2}-\d{2}) \(([^)]*)\)")
ROW = re.compile(r"^\| (?!scenario \|)(?!---)(.+?) \| (\d+) \| (.+?) \| (.+?) \|$")


def collect(docs: Path, parts: Sequence[str] = PARTS) -> str:
    found = [(name, (docs / name).read_text()) for name in parts if (docs / name).exists()]
    if not found:
        raise SystemExit(f"none of {', '.join(parts)} in {docs}: run the harness first (see --help)")
    lines = [
        TITLE,
        "",
        "The harness (`bench/faults/`) injects each fault for real — `kill -9` of the daemon, a link that",
        "drops packets or goes dark, a filesystem that fills, a hostile remote, raced purges, impostor SSH",
        "servers, fuzzed configs and API requests — and counts what happened. Every figure below is copied",
        "unchanged from a report of `python -m bench.faults`, run in parts (the whole takes over an hour);",
        "`python -m bench.faults.collect` put them together. Each part names its command and date.",
        "",
        "| scenario | runs | result | time | report |",
        "|---|---|---|---|---|",
    ]
    bodies = []
    for name, text in found:
        produced = PRODUCED.search(text)
        where = f"`{produced.group(1)}`, {produced.group(2)}" if produced else name
        for row in text.splitlines():
            if row.startswith("## "):
                break  # the summary table comes before the first section
            m = ROW.match(row)
            if m:
                lines.append(f"| {m.group(1)} | {m.group(2)} | {m.group(3)} | {m.group(4)} | {where} |")
        body: list[str] = []
        in_sections = False
        for row in text.splitlines()[1:]:  # without its own title, and its summary (in the table above)
            in_sections = in_sections or row.startswith("## ")
            if in_sections or not row.startswith("|"):
                body.append(row)
        bodies += ["", f"<!-- from docs/{name} -->", "\n".join(body).strip()]
    return "\n".join(lines + bodies) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=Path, default=REPO / "docs")
    args = p.parse_args(argv)
    out = args.docs / "reliability.md"
    out.write_text(collect(args.docs))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
