"""Which of a remote's files go and which stay: a pure state machine the runner feeds with evidence.

    planner = Planner(rows, listing, now=..., rules=..., free=..., local_missing=...)
    while batch := planner.to_verify():      # old candidates first, then oldest young ones for space
        planner.record(evidence_for(batch))  # local re-hash now + remote sha256sum, per file
    plan = planner.plan()

Nothing here does I/O, so every decision is unit- and property-tested without a server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mediasyncd.purge.eligibility import (
    VERIFIED_STATES,
    Local,
    Reason,
    RemoteHash,
    Rules,
    Seen,
    confirm,
    screen,
)
from mediasyncd.sources import same_version
from mediasyncd.state.purge import Tracked

Evidence = Mapping[int, tuple[str | Local, str | RemoteHash]]  # row id -> (local digest, remote digest)


@dataclass(frozen=True)
class Doomed:
    """A file the plan deletes: verified now, with its age and whether only free space chose it."""

    row: Tracked
    age: float
    for_space: bool = False


@dataclass
class Plan:
    delete: list[Doomed] = field(default_factory=list)
    kept: list[tuple[Tracked, Reason]] = field(default_factory=list)
    confirmed_gone: list[Tracked] = field(default_factory=list)  # deleted by an interrupted run
    still_there: list[Tracked] = field(default_factory=list)  # an interrupted run did not delete these
    absent: int = 0  # verified rows the remote no longer lists (not ours to act on)
    deleted_locally: int = 0  # on the remote, missing from the library
    free: int | None = None

    @property
    def freed_bytes(self) -> int:
        return sum(d.row.size for d in self.delete)

    def kept_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(str(reason) for _, reason in self.kept).items()))


class Planner:
    def __init__(
        self,
        rows: Iterable[Tracked],
        listing: Mapping[tuple[str, str], Seen],
        *,
        now: float,
        rules: Rules,
        free: int | None = None,
        local_missing: frozenset[int] = frozenset(),
        missing_roots: Sequence[str] = (),
        waiting: Mapping[int, str] | None = None,
    ) -> None:
        waiting = waiting or {}
        self.rules = rules
        self.result = Plan(free=free)
        self._ages: dict[int, float] = {}
        self._old: list[Tracked] = []
        self._spare: list[Tracked] = []  # verified-looking files screened out only by age, oldest first
        self._pending: dict[int, tuple[Tracked, bool]] = {}  # awaiting evidence -> chosen for space
        self._started = False
        for row in rows:
            seen = listing.get(row.key)
            if row.purge_run is not None:
                if row.root in missing_roots:
                    continue  # cannot tell; leave the mark for a run that can see the root
                if seen is None or not same_version(row.size, row.mtime, seen.size, seen.mtime):
                    self.result.confirmed_gone.append(row)
                    continue
                self.result.still_there.append(row)
            if seen is None:
                self.result.absent += 1
                continue
            missing = row.id in local_missing
            age = now - seen.mtime
            reason = screen(
                row, seen, age=age, rules=rules, local_missing=missing, waiting=waiting.get(row.id)
            )
            if missing and row.state in VERIFIED_STATES:
                self.result.deleted_locally += 1
            self._ages[row.id] = age
            if reason is None:
                self._old.append(row)
            elif reason is Reason.TOO_YOUNG and rules.min_free > 0:
                self._spare.append(row)
            else:
                self.result.kept.append((row, reason))
        self._spare.sort(key=lambda r: (r.mtime, r.id))

    def to_verify(self) -> list[Tracked]:
        """The next files whose evidence decides the plan; empty when the plan is complete."""
        if self._pending:
            raise RuntimeError("record() the evidence of the previous batch first")
        batch: list[tuple[Tracked, bool]] = []
        if not self._started:
            self._started = True
            batch = [(row, False) for row in self._old]
        if not batch:
            batch = [(row, True) for row in self._take_for_space()]
        if not batch:
            self.result.kept.extend((row, Reason.TOO_YOUNG) for row in self._spare)
            self._spare = []
        self._pending = {row.id: (row, for_space) for row, for_space in batch}
        return [row for row, _ in batch]

    def record(self, evidence: Evidence) -> None:
        """Decide the files of the last batch; a file without evidence is kept as unreadable."""
        for row_id, (row, for_space) in self._pending.items():
            local, remote = evidence.get(row_id, (Local.UNREADABLE, RemoteHash.UNREADABLE))
            reason = confirm(row, local, remote, rules=self.rules)
            if reason is None:
                self.result.delete.append(Doomed(row, self._ages[row.id], for_space))
            else:
                self.result.kept.append((row, reason))
        self._pending = {}

    def plan(self) -> Plan:
        if self._pending or self._spare or not self._started:
            raise RuntimeError("the plan is not complete: call to_verify() until it returns nothing")
        return self.result

    def _take_for_space(self) -> list[Tracked]:
        """Oldest young files just enough to bring free space up to `min_free` (none if it is)."""
        free = self.result.free
        if free is None or not self._spare:
            return []
        deficit = self.rules.min_free - free - self.result.freed_bytes
        taken: list[Tracked] = []
        while deficit > 0 and self._spare:
            row = self._spare.pop(0)
            taken.append(row)
            deficit -= row.size
        return taken


def deletion_order(plan: Plan) -> list[Doomed]:
    """Oldest first, so that an interrupted run has freed the oldest files."""
    return sorted(plan.delete, key=lambda d: (-d.age, d.row.id))
