"""The CJK search measurement (`python -m bench.search_cjk`) on a small catalog: the substring search finds
every word a trigram index finds, and the two-character words a trigram index cannot match."""

from __future__ import annotations

import re
from pathlib import Path

from bench import search_cjk


def test_substring_search_finds_what_trigram_cannot(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    search_cjk.fill(db_path, 400)
    lines = search_cjk.measure(db_path, repeat=1)
    hits = {
        word: (int(ours), int(trigram))
        for word, ours, trigram in (
            re.search(r"^\s*(\S+)\s.*\((\d+) hits\).*\((\d+) hits\)", line).groups()  # type: ignore[union-attr]
            for line in lines
            if "hits" in line
        )
    }
    assert set(hits) == set(search_cjk.QUERIES)
    assert hits["灯台"][0] > 0 and hits["灯台"][1] == 0  # two characters: below a trigram
    for word in ("桜の木", "窗台上", "lighthouse"):
        assert hits[word][0] == hits[word][1] > 0
    assert any("trigram index" in line for line in lines)
