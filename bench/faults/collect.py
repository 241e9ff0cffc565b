"""docs/reliability.md from the harness's reports: the full run takes over an hour (100 kills, 20 link
faults with blackholes past the SSH keepalive, a soak), so it can be run in parts, each writing its own
report, and this puts them together without changing a figure.

    .venv/bin/python -m bench.faults --only crash,link,disk,soak --out docs/reliability-data.md
    .venv/bin/python -m bench.faults --only hostile,purge_race,hostkeys,config_fuzz,api --out docs/reliability-security.md
    .venv/bin/python -m bench.faults --only workflow --out docs/reliability-workflow.md
    .venv/bin/python -m bench.faults --only crash,disk --out docs/reliability-rerun.md   # a few again
    .venv/bin/python -m bench.faults.collect     # -> docs/reliability.md

(A plain `python -m bench.faults` writes docs/reliability.md in one go instead.)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PARTS = (
    "reliability-data.md",
    "reliability-security.md",
    "reliability-workflow.md",
    "reliability-rerun.md",  # scenarios run again later: they replace the same ones above
)
TITLE = "# Reliability: what breaks, and what mediasyncd does then"
PRODUCED = re.compile(r"Every figure below was produced by `([^`]+)` on (\d{4}-\d{2}-\d{2}) \(([^)]*)\)")
ROW = re.compile(r"^\| (?!scenario \|)(?!---)(.+?) \| (\d+) \| (.+?) \| (.+?) \|$")


@dataclass
class _Part:
    name: str
    where: str  # its command and date
    preamble: list[str]  # its text before the first section, without its title and summary table
    rows: dict[str, str]  # scenario title -> its summary row's cells after the title
    sections: dict[str, str]  # scenario title -> its section's text


def _part(name: str, text: str) -> _Part:
    produced = PRODUCED.search(text)
    where = f"`{produced.group(1)}`, {produced.group(2)}" if produced else name
    part = _Part(name, where, [], {}, {})
    title: str | None = None
    body: list[str] = []
    for row in text.splitlines()[1:]:  # without its own title
        if row.startswith("## "):
            if title is not None:
                part.sections[title] = "\n".join(body).strip()
            title, body = row[3:], [row]
        elif title is not None:
            body.append(row)
        elif m := ROW.match(row):
            part.rows[m.group(1)] = f"{m.group(2)} | {m.group(3)} | {m.group(4)}"
        elif not row.startswith("|"):
            part.preamble.append(row)
    if title is not None:
        part.sections[title] = "\n".join(body).strip()
    return part


def collect(docs: Path, parts: Sequence[str] = PARTS) -> str:
    """The parts in order; a scenario reported again in a later part (a re-run of a few scenarios,
    without the hour of the others) is taken from there: its row, its section and its command."""
    found = [_part(name, (docs / name).read_text()) for name in parts if (docs / name).exists()]
    if not found:
        raise SystemExit(f"none of {', '.join(parts)} in {docs}: run the harness first (see --help)")
    owner = {title: part.name for part in found for title in part.sections}  # the last part wins
    lines = [
        TITLE,
        "",
        "The harness (`bench/faults/`) injects each fault for real — `kill -9` of the daemon, a link that",
        "drops packets or goes dark, a filesystem that fills, a hostile remote, raced purges, impostor SSH",
        "servers, fuzzed configs and API requests — and counts what happened. Every figure below is copied",
        "unchanged from a report of `python -m bench.faults`, run in parts (the whole takes over an hour);",
        "`python -m bench.faults.collect` put them together. Each part names its command and date; a",
        "scenario run again in a later part is shown from that part only.",
        "",
        "| scenario | runs | result | time | report |",
        "|---|---|---|---|---|",
    ]
    for part in found:
        for title, cells in part.rows.items():
            if owner.get(title, part.name) == part.name:
                lines.append(f"| {title} | {cells} | {part.where} |")
    bodies: list[str] = []
    for part in found:
        kept = [text for title, text in part.sections.items() if owner[title] == part.name]
        if not kept:
            continue
        moved = [title for title in part.sections if owner[title] != part.name]
        preamble = "\n".join(part.preamble).strip()
        if moved:
            preamble += f"\n\n*Shown from a later run instead:* {'; '.join(moved)}."
        bodies += ["", f"<!-- from docs/{part.name} -->", preamble, "", "\n\n".join(kept)]
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
