"""CJK search: the catalog's substring scan against an FTS5 trigram index, on the same records.

    .venv/bin/python -m bench.search_cjk [--records 10000 50000] [--repeat 5]

FTS5's default tokenizer keeps a run of kana or ideographs as one token, so a word inside a Japanese or
Chinese prompt is not a token; `Catalog.search` finds such words by substring (`instr` over prompt,
negative prompt, model and path: a scan of the catalog). The alternative is a second FTS5 table with the
`trigram` tokenizer. For each catalog size this builds a state DB through the real migrations and
`Catalog.save_record`/`index`, then times `Catalog.search` for 2- and 3-character CJK words (median of
`--repeat`) and the same words through a trigram table, and reports the trigram table's size. A
trigram index cannot match a word shorter than three characters, and most Japanese and Chinese words
are one or two characters long, so it would have to fall back to the scan for them anyway.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from mediasyncd.state.catalog import Catalog, MediaRow
from mediasyncd.state.connection import migrate, open_connection

_WORDS = (
    "灯台",
    "東京",
    "猫",
    "夜景",
    "桜の木",
    "一只猫",
    "窗台上",
    "네온사인",
    "雨",
    "森の中",
    "少女",
    "海辺",
)
_LATIN = ("masterpiece", "lighthouse", "portrait", "fox", "snow", "neon", "city", "forest", "river", "cat")
QUERIES = ("灯台", "桜の木", "窗台上", "lighthouse")


def fill(db_path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    conn = open_connection(db_path)
    migrate(conn)
    catalog = Catalog(conn)
    for n in range(count):
        words = rng.sample(_LATIN, 4) + (rng.sample(_WORDS, 2) if rng.random() < 0.3 else [])
        prompt = ", ".join(words) + ("、" + "".join(rng.sample(_WORDS, 3)) if rng.random() < 0.3 else "")
        record = {
            "generator": "comfyui",
            "prompt": prompt,
            "negative_prompt": "lowres",
            "model": "m",
            "seed": n,
        }
        catalog.save_record(MediaRow(f"r/{n:07d}.png", f"{n:064x}", "r", f"{n:07d}.png"), record, None)
        catalog.index(f"r/{n:07d}.png")
    with conn:
        conn.execute(
            "CREATE VIRTUAL TABLE cjk_trigram USING fts5(prompt, negative_prompt, tokenize='trigram')"
        )
        conn.execute(
            "INSERT INTO cjk_trigram (rowid, prompt, negative_prompt)"
            " SELECT rowid, coalesce(prompt, ''), coalesce(negative_prompt, '') FROM media"
        )
    conn.close()


def _median_ms(action: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(db_path: Path, repeat: int) -> list[str]:
    catalog = Catalog.read_only(db_path)
    conn = sqlite3.connect(db_path)
    lines = []
    for word in QUERIES:
        hits = len(catalog.search(word, 1_000_000))
        scan = _median_ms(lambda word=word: catalog.search(word, 50), repeat)
        sql = "SELECT rowid FROM cjk_trigram WHERE cjk_trigram MATCH ? LIMIT 50"
        phrase = '"' + word + '"'
        found = len(conn.execute(sql.replace(" LIMIT 50", ""), (phrase,)).fetchall())
        trigram = _median_ms(lambda phrase=phrase, sql=sql: conn.execute(sql, (phrase,)).fetchall(), repeat)
        lines.append(
            f"  {word:<10} {len(word)} chars: search {scan:7.2f} ms ({hits} hits); "
            f"trigram {trigram:6.2f} ms ({found} hits)"
        )
    pages = (
        conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'cjk_trigram%'").fetchone()[0]
        if _has_dbstat(conn)
        else None
    )
    total = db_path.stat().st_size
    if pages:
        lines.append(f"  trigram index {pages / 1e6:.1f} MB of a {total / 1e6:.1f} MB state DB")
    catalog.close()
    conn.close()
    return lines


def _has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1")
    except sqlite3.OperationalError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="search-cjk-") as folder:
        for count in args.records:
            db_path = Path(folder) / f"state-{count}.db"
            fill(db_path, count)
            print(f"{count} records:")
            print("\n".join(measure(db_path, args.repeat)))


if __name__ == "__main__":
    main()
