"""The search language's parser and its SQL: pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from mediasyncd.state.query import Filter, Query, Term, parse_query, to_sql


def test_words_phrases_and_negations() -> None:
    """Bare words, a quoted phrase and `-` negations become terms in order."""
    assert parse_query('red fox "exact phrase" -blurry -"low quality"').terms == (
        Term("red"),
        Term("fox"),
        Term("exact phrase", phrase=True),
        Term("blurry", negated=True),
        Term("low quality", phrase=True, negated=True),
    )


def test_every_field_of_the_issue_example() -> None:
    """model/lora substring, seed equality as text, steps comparison, generator/remote exact, after date."""
    query = parse_query(
        "model:juggernaut lora:detail seed:1234 steps:>30 generator:comfyui remote:forge1 after:2026-11-01"
    )
    assert query.filters == (
        Filter("model", "~", "juggernaut"),
        Filter("lora", "~", "detail"),
        Filter("seed", "=", "1234"),
        Filter("steps", ">", 30.0),
        Filter("generator", "=", "comfyui"),
        Filter("remote", "=", "forge1"),
        Filter("landed", ">=", datetime(2026, 11, 1, tzinfo=UTC).timestamp()),
    )
    assert query.terms == () and query.notes == ()


def test_ranges_comparisons_and_negated_filters() -> None:
    """cfg:4..7 is two bounds; -steps:<=20 and a negated range stay single negated filters."""
    assert parse_query("cfg:4..7").filters == (Filter("cfg", ">=", 4.0), Filter("cfg", "<=", 7.0))
    assert parse_query("-steps:<=20").filters == (Filter("steps", "<=", 20.0, negated=True),)
    assert parse_query("-cfg:4..7").filters == (Filter("cfg", "between", "4.0..7.0", negated=True),)


def test_quoted_field_values_and_aliases() -> None:
    """model:"juggernaut xl" keeps the space; loras: and checkpoint: are aliases; case is ignored."""
    assert parse_query('Model:"Juggernaut XL" loras:Detail checkpoint:sdxl').filters == (
        Filter("model", "~", "juggernaut xl"),
        Filter("lora", "~", "detail"),
        Filter("model", "~", "sdxl"),
    )


def test_prompt_and_negative_search_one_column() -> None:
    """prompt:/negative: are full-text terms limited to that column."""
    assert parse_query("prompt:lighthouse -negative:blurry").terms == (
        Term("lighthouse", column="prompt"),
        Term("blurry", negated=True, column="negative_prompt"),
    )


def test_unknown_fields_and_bad_values_are_searched_as_words() -> None:
    """score_9: is not a field; steps:many and after:soon are words with a note why."""
    query = parse_query("score_9:high steps:many after:soon")
    assert [term.text for term in query.terms] == ["score_9:high", "steps:many", "after:soon"]
    assert query.notes == ("steps:many is not a number or range", "after:soon is not a date (YYYY-MM-DD)")


def test_stray_operators_and_unbalanced_quotes_never_raise() -> None:
    """Punctuation-only tokens are dropped; an unclosed quote runs to the end."""
    assert parse_query("( ) - --").empty
    assert parse_query('"quoted cat').terms == (Term("quoted cat", phrase=True),)


def test_sql_ranks_by_the_positive_words_and_excludes_the_negated() -> None:
    """Positive words make the MATCH; each negated word is a NOT IN; filters are parameterised."""
    sql = to_sql(parse_query('cat "red hat" -dog steps:>30'))
    assert sql.match == '"cat" "red hat"'
    assert sql.where == [
        "m.rowid IN (SELECT rowid FROM media_fts WHERE media_fts MATCH ?)",
        "m.rowid NOT IN (SELECT rowid FROM media_fts WHERE media_fts MATCH ?)",
        "m.steps > ?",
    ]
    assert sql.params == ['"cat" "red hat"', '"dog"', 30.0]


def test_cjk_words_are_substring_conditions() -> None:
    """A word in a script without spaces is matched by substring, not FTS5."""
    sql = to_sql(parse_query("灯台"))
    assert sql.match is None and sql.params == ["灯台"] * 4


def test_an_empty_query_has_no_conditions() -> None:
    """Whitespace parses to the empty query and no SQL."""
    assert parse_query("   ") == Query()
    assert to_sql(Query()).where == []


def test_or_joins_neighbouring_words_and_not_negates_the_next() -> None:
    """`a OR b OR c` is one term with alternatives; `NOT x` is `-x`; AND is a no-op."""
    query = parse_query("lighthouse OR fox OR alley AND cat NOT dog")
    assert [term.text for term in query.terms] == ["lighthouse", "cat", "dog"]
    assert [alt.text for alt in query.terms[0].alternatives] == ["fox", "alley"]
    assert query.terms[2].negated
    assert to_sql(query).match == '("lighthouse" OR "fox" OR "alley") "cat"'
