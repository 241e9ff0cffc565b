"""The search box's language, parsed into a pure value (no SQL, no I/O) and turned into SQL conditions.

    model:juggernaut lora:detail seed:1234 steps:>30 cfg:4..7 generator:comfyui remote:forge1
    after:2026-11-01 before:2026-12-01 prompt:lighthouse "exact phrase" -negated -"not this" -lora:blur

A bare word or "quoted phrase" is searched in the prompt, negative prompt, model, generator and path
(FTS5, ranked by BM25); `prompt:`/`negative:` search one of those. A leading `-` negates any term or
filter. Numbers take `>`, `>=`, `<`, `<=`, `=` or a range `a..b`; dates are ISO (`2026-11-01`, UTC).
Anything that is not a known field ("score_9:" in a prompt, a bad number) is searched as a word, and the
reason is kept in `Query.notes`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

# Scripts written without spaces between words: FTS5's unicode61 tokenizer keeps a run as one token, so a
# word inside it is found by substring instead.
UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")

TEXT_FIELDS = ("model", "lora", "sampler", "scheduler", "path")  # substring, case-insensitive
EXACT_FIELDS = ("generator", "remote")  # whole value, case-insensitive
NUMBER_FIELDS = ("seed", "steps", "cfg", "width", "height")
DATE_FIELDS = ("after", "before")
COLUMN_FIELDS = {"prompt": "prompt", "negative": "negative_prompt"}  # FTS5 columns
ALIASES = {"loras": "lora", "checkpoint": "model", "neg": "negative", "gen": "generator", "size": "width"}

_TOKEN = re.compile(r'(-?)(?:([A-Za-z_]+):)?(?:"([^"]*)"?|(\S+))')
_COMPARE = re.compile(r"(>=|<=|>|<|=)?\s*(-?\d+(?:\.\d+)?)")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # as SQLite's lower()
_WORD = re.compile(r"\w")
_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Term:
    """Words searched in the full-text index (or by substring, for CJK); `column` limits it to one."""

    text: str
    phrase: bool = False
    negated: bool = False
    column: str | None = None
    alternatives: tuple[Term, ...] = ()  # `a OR b OR c`: this term or any of these

    @property
    def unspaced(self) -> bool:
        return any(UNSPACED.search(term.text) for term in self.choices)

    @property
    def choices(self) -> tuple[Term, ...]:
        return (self, *self.alternatives)


@dataclass(frozen=True)
class Filter:
    field: str
    op: str  # "~" substring, "=" equal, "<", "<=", ">", ">="
    value: str | float
    negated: bool = False


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()
    filters: tuple[Filter, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms and not self.filters


def parse_query(text: str) -> Query:
    """The query `text` means; never raises."""
    terms: list[Term] = []
    filters: list[Filter] = []
    notes: list[str] = []
    pending_or = pending_not = False
    for match in _TOKEN.finditer(text):
        negated, name, quoted, bare = match.group(1) == "-", match.group(2), match.group(3), match.group(4)
        value = quoted if quoted is not None else bare or ""
        phrase = quoted is not None
        if name is None and not negated and bare in ("OR", "AND", "NOT"):
            pending_or, pending_not = bare == "OR", bare == "NOT"  # AND is what a space means anyway
            continue
        negated |= pending_not
        if name is None:
            if _WORD.search(value):
                term = Term(value, phrase=phrase or " " in value, negated=negated)
                if (
                    pending_or
                    and terms
                    and not terms[-1].negated
                    and not negated
                    and terms[-1].column is None
                ):
                    last = terms.pop()
                    term = replace(last, alternatives=(*last.alternatives, term))
                terms.append(term)
            pending_or = pending_not = False
            continue
        pending_or = pending_not = False
        key = ALIASES.get(name.lower(), name.lower())
        made = _field(key, value, negated)
        if isinstance(made, str):
            if made:
                notes.append(made)
            whole = f"{name}:{value}"
            terms.append(Term(whole, phrase=True, negated=negated))
        else:
            terms.extend(item for item in made if isinstance(item, Term))
            filters.extend(item for item in made if isinstance(item, Filter))
    return Query(tuple(terms), tuple(filters), tuple(notes))


def _field(key: str, value: str, negated: bool) -> list[Term | Filter] | str:
    """The term or filters for `key:value`, or why it is searched as a word ("" when not a field)."""
    if not value:
        return f"{key}: has no value" if _known(key) else ""
    if key in COLUMN_FIELDS:
        return [Term(value, phrase=" " in value, negated=negated, column=COLUMN_FIELDS[key])]
    if key in TEXT_FIELDS:
        return [Filter(key, "~", value.translate(_ASCII_LOWER), negated)]
    if key in EXACT_FIELDS:
        return [Filter(key, "=", value.translate(_ASCII_LOWER), negated)]
    if key in NUMBER_FIELDS:
        return _numbers(key, value, negated)
    if key in DATE_FIELDS:
        at = _date(value)
        if at is None:
            return f"{key}:{value} is not a date (YYYY-MM-DD)"
        return [Filter("landed", ">=" if key == "after" else "<", at, negated)]
    return ""


def _known(key: str) -> bool:
    return key in (*TEXT_FIELDS, *EXACT_FIELDS, *NUMBER_FIELDS, *DATE_FIELDS, *COLUMN_FIELDS)


def _numbers(key: str, value: str, negated: bool) -> list[Term | Filter] | str:
    if span := _RANGE.fullmatch(value):
        low, high = float(span.group(1)), float(span.group(2))
        if negated:  # not within [low, high]: one filter that the SQL side negates as a whole
            return [Filter(key, "between", f"{low}..{high}", True)]
        return [Filter(key, ">=", low), Filter(key, "<=", high)]
    if compare := _COMPARE.fullmatch(value):
        op, number = compare.group(1) or "=", compare.group(2)
        if key == "seed" and op == "=":  # seeds reach 2**64: compared as their decimal text
            return [Filter(key, "=", str(int(float(number))), negated)]
        return [Filter(key, op, float(number), negated)]
    return f"{key}:{value} is not a number or range"


def _date(value: str) -> float | None:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


# -- SQL ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    """Conditions to AND into a WHERE clause, their parameters, and the FTS5 MATCH for ranking (if any)."""

    where: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)
    match: str | None = None


# Where each filter looks, in a query over `media AS m` joined to `files AS f` (for the landing time).
COLUMNS: Mapping[str, str] = {
    "model": "m.model",
    "lora": "m.loras",
    "sampler": "m.sampler",
    "scheduler": "m.scheduler",
    "path": "m.path",
    "generator": "m.generator",
    "remote": "m.remote",
    "seed": "m.seed",  # TEXT: seeds reach 2**64; ordered comparisons cast it
    "steps": "m.steps",
    "cfg": "m.cfg",
    "width": "m.width",
    "height": "m.height",
    # Landed at; a file the pipeline saw without a `files` row (reprocess, tests): when it was recorded.
    "landed": "COALESCE(f.landed_at, f.first_seen, (julianday(m.updated_at) - 2440587.5) * 86400.0)",
}
SUBSTRING_COLUMNS = ("m.prompt", "m.negative_prompt", "m.model", "m.path")


def to_sql(query: Query, rowid: str = "m.rowid") -> Sql:
    """SQL conditions for `query` over `media AS m` (and `files AS f`); `match` ranks the FTS5 hits."""
    sql = Sql()
    positive = [term for term in query.terms if not term.negated and not term.unspaced]
    if positive:
        sql = Sql(match=" ".join(_fts(term) for term in positive))
        sql.where.append(f"{rowid} IN (SELECT rowid FROM media_fts WHERE media_fts MATCH ?)")
        sql.params.append(sql.match)
    for term in query.terms:
        if term.negated and not term.unspaced:
            sql.where.append(f"{rowid} NOT IN (SELECT rowid FROM media_fts WHERE media_fts MATCH ?)")
            sql.params.append(_fts(term))
        elif term.unspaced:
            where, params = _substring(term)
            sql.where.append(f"NOT {where}" if term.negated else where)
            sql.params.extend(params)
    for item in query.filters:
        where, params = _filter(item)
        sql.where.append(f"NOT COALESCE({where}, 0)" if item.negated else where)
        sql.params.extend(params)
    return sql


def _fts(term: Term) -> str:
    if term.alternatives:
        return "(" + " OR ".join(_fts(replace(choice, alternatives=())) for choice in term.choices) + ")"
    quoted = '"' + term.text.replace('"', '""') + '"'
    if not term.phrase:  # each word on its own, so word order does not matter
        quoted = " ".join('"' + word.replace('"', '""') + '"' for word in term.text.split())
    return f"{term.column} : ({quoted})" if term.column else quoted


def _substring(term: Term) -> tuple[str, list[object]]:
    columns: tuple[str, ...] = SUBSTRING_COLUMNS
    if term.column is not None:
        columns = ("m.prompt",) if term.column == "prompt" else ("m.negative_prompt",)
    one = "(" + " OR ".join(f"instr(lower(coalesce({c}, '')), ?) > 0" for c in columns) + ")"
    needles = [choice.text.translate(_ASCII_LOWER) for choice in term.choices]
    return "(" + " OR ".join([one] * len(needles)) + ")", [n for n in needles for _ in columns]


def _filter(item: Filter) -> tuple[str, list[object]]:
    column = COLUMNS[item.field]
    if item.op == "~":
        return f"instr(lower(coalesce({column}, '')), ?) > 0", [item.value]
    if item.op == "between":
        low, high = str(item.value).split("..")
        if item.field == "seed":
            column = f"CAST({column} AS REAL)"
        return f"({column} >= ? AND {column} <= ?)", [float(low), float(high)]
    if isinstance(item.value, str):
        return f"lower({column}) = ?", [item.value]
    if item.field == "seed":
        column = f"CAST({column} AS REAL)"
    return f"{column} {item.op} ?", [item.value]
