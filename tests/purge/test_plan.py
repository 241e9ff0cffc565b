"""The planner: which files go, in what order, and the safety rule over random mixes (hypothesis)."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from mediasyncd.purge.eligibility import Local, Reason, RemoteHash, Rules, Seen
from mediasyncd.purge.plan import Plan, Planner, deletion_order
from mediasyncd.state import FileState
from mediasyncd.state.purge import Tracked

GOOD = "a" * 64
BAD = "b" * 64
NOW = 1_800_000_000.0
HOUR = 3600.0


def row(i: int, *, age: float, size: int = 100, state: str = "landed", pending: int | None = None) -> Tracked:
    return Tracked(i, "/out", f"f{i}.png", size, NOW - age, FileState(state), GOOD, f"r1/f{i}.png", pending)


def seen_of(*rows: Tracked) -> dict[tuple[str, str], Seen]:
    return {r.key: Seen(r.size, r.mtime) for r in rows}


def drive(planner: Planner, evidence: Mapping[int, tuple[str | Local, str | RemoteHash]]) -> Plan:
    """Feed the planner the way the runner does, one batch at a time."""
    while batch := planner.to_verify():
        planner.record({r.id: evidence[r.id] for r in batch if r.id in evidence})
    return planner.plan()


def all_good(*rows: Tracked) -> dict[int, tuple[str | Local, str | RemoteHash]]:
    return {r.id: (GOOD, GOOD) for r in rows}


def test_only_old_verified_files_are_planned_for_deletion() -> None:
    """Old verified files go; a young one stays as too young."""
    old, young = row(1, age=2 * HOUR), row(2, age=60)
    plan = drive(Planner([old, young], seen_of(old, young), now=NOW, rules=Rules(HOUR)), all_good(old, young))
    assert [d.row.id for d in plan.delete] == [1]
    assert plan.kept == [(young, Reason.TOO_YOUNG)]


def test_evidence_that_never_arrives_keeps_the_file() -> None:
    """A candidate without hashes (e.g. the local hash failed) is kept, not deleted."""
    old = row(1, age=2 * HOUR)
    plan = drive(Planner([old], seen_of(old), now=NOW, rules=Rules(HOUR)), {})
    assert plan.delete == [] and plan.kept == [(old, Reason.LOCAL_UNREADABLE)]


def test_min_free_takes_the_oldest_young_files_until_the_deficit_is_covered() -> None:
    """Below min_free, verified young files go oldest first, and no more than needed."""
    rows = [row(i, age=600 - i * 100, size=1000) for i in range(4)]  # row 0 is the oldest
    rules = Rules(24 * HOUR, min_free=10_000)
    plan = drive(Planner(rows, seen_of(*rows), now=NOW, rules=rules, free=8_500), all_good(*rows))
    assert [d.row.id for d in plan.delete] == [0, 1]
    assert all(d.for_space for d in plan.delete)
    assert sorted(r.id for r, reason in plan.kept if reason is Reason.TOO_YOUNG) == [2, 3]


def test_min_free_counts_old_files_first_and_replaces_young_ones_that_fail() -> None:
    """Old deletions count toward the deficit; a young file that fails verification is replaced by
    the next oldest."""
    old = row(9, age=48 * HOUR, size=1000)
    young = [row(i, age=600 - i * 100, size=1000) for i in range(3)]
    evidence = all_good(old, *young) | {0: (BAD, GOOD)}
    rules = Rules(24 * HOUR, min_free=10_000)
    plan = drive(Planner([old, *young], seen_of(old, *young), now=NOW, rules=rules, free=8_000), evidence)
    assert sorted(d.row.id for d in plan.delete) == [1, 9]
    assert (young[0], Reason.CORRUPT_LOCALLY) in plan.kept


def test_without_a_free_space_reading_young_files_stay() -> None:
    """min_free set but free space unknown: nothing is purged early."""
    young = row(1, age=60)
    plan = drive(
        Planner([young], seen_of(young), now=NOW, rules=Rules(HOUR, min_free=10**12)), all_good(young)
    )
    assert plan.delete == [] and plan.kept == [(young, Reason.TOO_YOUNG)]


def test_an_interrupted_delete_is_confirmed_when_the_file_is_gone() -> None:
    """A row marked mid-delete whose file the listing no longer shows was deleted: confirm it."""
    gone = row(1, age=2 * HOUR, pending=7)
    plan = drive(Planner([gone], {}, now=NOW, rules=Rules(HOUR)), {})
    assert plan.confirmed_gone == [gone] and plan.delete == [] and plan.absent == 0


def test_an_interrupted_delete_of_a_file_still_there_is_planned_afresh() -> None:
    """A row marked mid-delete whose file is still listed was not deleted; it is judged again."""
    there = row(1, age=60, pending=7)
    plan = drive(Planner([there], seen_of(there), now=NOW, rules=Rules(HOUR)), all_good(there))
    assert plan.still_there == [there] and plan.confirmed_gone == []
    assert plan.kept == [(there, Reason.TOO_YOUNG)]


def test_a_pending_row_under_a_missing_root_is_left_undecided() -> None:
    """If a whole root is missing from the listing nothing about its files can be confirmed."""
    pending = row(1, age=2 * HOUR, pending=7)
    plan = drive(Planner([pending], {}, now=NOW, rules=Rules(HOUR), missing_roots=["/out"]), {})
    assert plan.confirmed_gone == [] and plan.still_there == [] and plan.delete == []


def test_files_deleted_from_the_library_are_counted() -> None:
    """Verified files still on the remote but missing locally are counted for /status and dry runs."""
    a, b = row(1, age=2 * HOUR), row(2, age=60)
    planner = Planner([a, b], seen_of(a, b), now=NOW, rules=Rules(HOUR), local_missing=frozenset({1, 2}))
    plan = drive(planner, {})
    assert plan.deleted_locally == 2
    assert plan.kept_counts() == {"missing_locally": 2}


def test_deletion_order_is_oldest_first() -> None:
    """An interrupted run has freed the oldest files first."""
    rows = [row(1, age=2 * HOUR), row(2, age=9 * HOUR), row(3, age=5 * HOUR)]
    plan = drive(Planner(rows, seen_of(*rows), now=NOW, rules=Rules(HOUR)), all_good(*rows))
    assert [d.row.id for d in deletion_order(plan)] == [2, 3, 1]


# ----------------------------------------------------------------------------------- property
STATES = tuple(s for s in FileState if s is not FileState.PURGED)  # tracked rows are never purged
World = tuple[
    list[Tracked],
    dict[tuple[str, str], Seen],
    dict[int, tuple[str | Local, str | RemoteHash]],
    Rules,
    int | None,
    bool,
]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n = draw(st.integers(0, 25))
    can_hash = draw(st.booleans())
    rows: list[Tracked] = []
    seen: dict[tuple[str, str], Seen] = {}
    evidence: dict[int, tuple[str | Local, str | RemoteHash]] = {}
    for i in range(n):
        rel = draw(st.sampled_from([f"f{i}.png", f"keep/f{i}.png", f"a/b/f{i}.webp"]))
        size = draw(st.integers(0, 5000))
        mtime = NOW - draw(st.floats(0, 4 * HOUR, allow_nan=False))
        sha = draw(st.sampled_from([GOOD, None]))
        t = Tracked(
            i,
            "/out",
            rel,
            size,
            mtime,
            draw(st.sampled_from(STATES)),
            sha,
            draw(st.sampled_from([f"r1/{rel}", None])),
            draw(st.sampled_from([None, None, 3])),
        )
        rows.append(t)
        remote = draw(st.sampled_from(["same", "same", "absent", "size", "mtime"]))
        if remote != "absent":
            seen[t.key] = Seen(size + (remote == "size"), mtime + 5 * (remote == "mtime"))
        local = draw(st.sampled_from([GOOD, GOOD, BAD, Local.MISSING, Local.UNREADABLE]))
        theirs: str | RemoteHash = RemoteHash.UNSUPPORTED
        if can_hash:
            theirs = draw(st.sampled_from([GOOD, GOOD, BAD, RemoteHash.UNREADABLE]))
        evidence[i] = (local, theirs)
    rules = Rules(
        older_than=HOUR,
        preserve=draw(st.sampled_from([(), ("keep/**",), ("*.webp", "keep/**")])),
        min_free=draw(st.sampled_from([0, 0, 2000, 10**9])),
        include_deleted_locally=draw(st.booleans()),
    )
    free = draw(st.sampled_from([None, 0, 1500, 10**10]))
    return rows, seen, evidence, rules, free, can_hash


def is_safe(
    r: Tracked, seen: Seen | None, local: str | Local, remote: str | RemoteHash, rules: Rules
) -> bool:
    """The safety rule, written out independently of the code under test."""
    verified = r.state in ("landed", "processed") and r.sha256 is not None and r.local_path is not None
    unchanged = seen is not None and seen.size == r.size and seen.mtime == r.mtime
    preserved = (r.rel.startswith("keep/") and "keep/**" in rules.preserve) or (
        r.rel.endswith(".webp") and "*.webp" in rules.preserve
    )
    local_ok = local == r.sha256 or (local is Local.MISSING and rules.include_deleted_locally)
    remote_ok = remote is RemoteHash.UNSUPPORTED or remote == r.sha256
    return verified and unchanged and not preserved and local_ok and remote_ok


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_nothing_unverified_is_ever_deleted(
    world: World,
) -> None:
    """Over random mixes of file states, every planned deletion satisfies the whole safety rule, young
    files go only to free space below min_free, and each file is decided exactly once."""
    rows, seen, evidence, rules, free, _ = world
    local_missing = frozenset(i for i, (local, _) in evidence.items() if local is Local.MISSING)
    planner = Planner(rows, seen, now=NOW, rules=rules, free=free, local_missing=local_missing)
    plan = drive(planner, evidence)
    for doomed in plan.delete:
        r = doomed.row
        local, remote = evidence[r.id]
        assert is_safe(r, seen.get(r.key), local, remote, rules), (r, local, remote)
        if NOW - r.mtime < rules.older_than:
            assert doomed.for_space and free is not None and free < rules.min_free
    decided = (
        [d.row.id for d in plan.delete] + [r.id for r, _ in plan.kept] + [r.id for r in plan.confirmed_gone]
    )
    assert len(decided) == len(set(decided))
    assert len(decided) + plan.absent == len(rows)


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_min_free_never_deletes_more_young_files_than_needed(
    world: World,
) -> None:
    """Below min_free, safe young files go until the threshold is reached (or none are left), and
    without its last young file the plan would not have reached it: it stops at the threshold."""
    rows, seen, evidence, rules, free, _ = world
    plan = drive(Planner(rows, seen, now=NOW, rules=rules, free=free), evidence)
    if free is not None and free < rules.min_free:
        safe_young = {
            r.id
            for r in rows
            if NOW - r.mtime < rules.older_than and is_safe(r, seen.get(r.key), *evidence[r.id], rules)
        }
        deleted = {d.row.id for d in plan.delete}
        assert free + plan.freed_bytes >= rules.min_free or safe_young <= deleted
    for_space = [d for d in plan.delete if d.for_space]
    if for_space:
        assert free is not None
        assert free + plan.freed_bytes - for_space[-1].row.size < rules.min_free
