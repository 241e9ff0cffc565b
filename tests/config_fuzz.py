"""Hypothesis strategies for hostile configs: a valid config with one key set to a wrong type, an absurd
size or duration, an unknown key, a duplicate remote name, or bytes that are not UTF-8; and the check of
what loading one must give (a valid Config, or a ConfigError naming the key path; never another
exception). Used by tests/test_config_fuzz.py and the fault harness (bench/faults/config_fuzz.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from mediasyncd.config import load_config
from mediasyncd.errors import ConfigError

# (key path as the config reports it, where it lives in the document)
KEYS: tuple[tuple[str, tuple[str | int, ...]], ...] = (
    ("daemon.library", ("daemon", "library")),
    ("daemon.status_listen", ("daemon", "status_listen")),
    ("daemon.library_min_free", ("daemon", "library_min_free")),
    ("daemon.event_retention", ("daemon", "event_retention")),
    ("transfer.concurrency", ("transfer", "concurrency")),
    ("transfer.bwlimit", ("transfer", "bwlimit")),
    ("transfer.file_mode", ("transfer", "file_mode")),
    ("purge.older_than", ("purge", "older_than")),
    ("purge.schedule", ("purge", "schedule")),
    ("purge.min_free", ("purge", "min_free")),
    ("purge.preserve", ("purge", "preserve")),
    ("remotes[0].name", ("remotes", 0, "name")),
    ("remotes[0].port", ("remotes", 0, "port")),
    ("remotes[0].host_key", ("remotes", 0, "host_key")),
    ("remotes[0].roots", ("remotes", 0, "roots")),
    ("remotes[0].include", ("remotes", 0, "include")),
    ("remotes[0].poll_interval", ("remotes", 0, "poll_interval")),
    ("remotes[0].settle", ("remotes", 0, "settle")),
    ("remotes[0].watch", ("remotes", 0, "watch")),
    ("remotes[1].roots", ("remotes", 1, "roots")),
    ("remotes[1].transport", ("remotes", 1, "transport")),
    ("remotes[2].command", ("remotes", 2, "command")),
    ("remotes[2].name", ("remotes", 2, "name")),
)

ABSURD = st.sampled_from(
    [
        "9" * 400 + "d", "99999999999999999d", "1e400s", "-5s", "NaN", "inf", "1.5.5h", "", " ", "0x10",
        "9" * 40 + "TiB", "-1MiB", "12 parsecs", "\x00", "💥", "0755x", "* * * *", "61 * * * *",
        "127.0.0.1:99999", "[::1]:0", "../../etc", "/", "~", "\u202e", "a" * 5000, "/tmp/\x00x",
        ["sh", "\x00"], ["/tmp/\x00"],
    ]
)  # fmt: skip
VALUES: st.SearchStrategy[Any] = st.one_of(
    ABSURD,
    st.integers(),
    st.integers(min_value=2**62, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=2),
)


def base_doc(tmp: Path) -> dict[str, Any]:
    """A valid config: an SSH remote, a local one and an exec one."""
    (tmp / "library").mkdir(parents=True, exist_ok=True)
    (tmp / "src").mkdir(parents=True, exist_ok=True)
    return {
        "daemon": {
            "library": str(tmp / "library"),
            "state_dir": str(tmp / "state"),
            "status_listen": "127.0.0.1:8765",
            "library_min_free": "0",
            "event_retention": "30d",
        },
        "transfer": {"concurrency": 4, "bwlimit": "0", "file_mode": "0644"},
        "purge": {"older_than": "24h", "schedule": "0 * * * *", "min_free": "0", "preserve": []},
        "remotes": [
            {
                "name": "gpu",
                "host": "gpu.example",
                "port": 22,
                "host_key": "strict",
                "kind": "generic",
                "roots": ["/workspace/out"],
                "include": ["*.png"],
                "poll_interval": "10s",
                "settle": "5s",
                "watch": "poll",
            },
            {"name": "folder", "transport": "local", "roots": [str(tmp / "src")]},
            {"name": "pod", "transport": "exec", "command": ["sh", "-c", "exec sh"], "roots": ["/srv/out"]},
        ],
    }


@dataclass(frozen=True)
class Mutation:
    kind: str  # "value" | "unknown" | "duplicate" | "non-utf8"
    key: str  # the key path the error must name ("" for file-level problems)
    where: tuple[str | int, ...] = ()
    value: Any = None


MUTATIONS: st.SearchStrategy[Mutation] = st.one_of(
    st.builds(lambda kv, v: Mutation("value", kv[0], kv[1], v), st.sampled_from(KEYS), VALUES),
    st.builds(
        lambda table, name: Mutation("unknown", f"{table[0]}{name}", table[1] + (name,), 1),
        st.sampled_from(
            [("daemon.", ("daemon",)), ("transfer.", ("transfer",)), ("remotes[0].", ("remotes", 0))]
        ),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=12).map(lambda s: "zz" + s),
    ),
    st.just(Mutation("duplicate", "remotes[1].name")),
    st.just(Mutation("non-utf8", "")),
)


def render(tmp: Path, mutation: Mutation) -> bytes:
    doc = copy.deepcopy(base_doc(tmp))
    if mutation.kind in ("value", "unknown"):
        node: Any = doc
        for part in mutation.where[:-1]:
            node = node[part]
        node[mutation.where[-1]] = mutation.value
    elif mutation.kind == "duplicate":
        doc["remotes"][1]["name"] = doc["remotes"][0]["name"]
    data = tomli_w.dumps(doc).encode()
    if mutation.kind == "non-utf8":
        data = data.replace(b'"gpu.example"', b'"gpu\xff\xfe.example"')
    return data


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    crashed: str | None  # an exception other than ConfigError: what a user would see as a traceback
    unnamed: bool  # rejected without naming the key path that was broken


def judge(path: Path, mutation: Mutation) -> Verdict:
    """Load the config at `path` as `config check` does, and judge the outcome."""
    try:
        load_config(path)
    except ConfigError as exc:
        text = "\n".join(exc.problems)
        if mutation.kind == "non-utf8":
            return Verdict(False, None, "UTF-8" not in text)
        return Verdict(False, None, mutation.key not in text)
    except Exception as exc:  # the finding: this would be a traceback
        return Verdict(False, f"{type(exc).__name__}: {exc}"[:200], False)
    return Verdict(True, None, mutation.kind in ("unknown", "duplicate", "non-utf8"))
