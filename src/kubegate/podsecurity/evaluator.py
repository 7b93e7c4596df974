"""Evaluating a pod against a level and version, and upstream's aggregation of the failures into
messages (policy/registry.go, policy/checks.go). Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubegate.podsecurity.api import LATEST, NEWEST_MINOR, PRIVILEGED, RESTRICTED, LevelVersion
from kubegate.podsecurity.checks import CHECKS, Check, CheckFn, Revision, pod_containers
from kubegate.podsecurity.screen import plainly_allowed


@dataclass(frozen=True)
class Violation:
    reason: str
    detail: str


@dataclass(frozen=True)
class Aggregate:
    violations: tuple[Violation, ...]

    @property
    def allowed(self) -> bool:
        return not self.violations

    def forbidden_reason(self) -> str:
        """Reasons only, as in the namespace-relabel warnings."""
        return ", ".join(v.reason for v in self.violations)

    def forbidden_detail(self) -> str:
        """`reason (detail), reason, ...` as in denials and warnings."""
        return ", ".join(f"{v.reason} ({v.detail})" if v.detail else v.reason for v in self.violations)


def _revision_at(check: Check, minor: int) -> Revision | None:
    found: Revision | None = None
    for rev in check.revisions:
        if rev.minimum_minor <= minor:
            found = rev
    return found


def _build() -> dict[tuple[str, int], tuple[CheckFn, ...]]:
    baseline = sorted((c for c in CHECKS if c.level != RESTRICTED), key=lambda c: c.id)
    restricted = sorted((c for c in CHECKS if c.level == RESTRICTED), key=lambda c: c.id)
    table: dict[tuple[str, int], tuple[CheckFn, ...]] = {}
    for minor in range(NEWEST_MINOR + 1):
        base_revs = [(c.id, _revision_at(c, minor)) for c in baseline]
        restr_revs = [(c.id, _revision_at(c, minor)) for c in restricted]
        overridden = {o for _, r in restr_revs if r is not None for o in r.overrides}
        table[("baseline", minor)] = tuple(r.check for _, r in base_revs if r is not None)
        table[(RESTRICTED, minor)] = tuple(
            [r.check for cid, r in base_revs if r is not None and cid not in overridden]
            + [r.check for _, r in restr_revs if r is not None])
    return table


_TABLE = _build()
ALLOWED = Aggregate(())  # immutable, so every allowed pod shares it


def evaluate_pod(lv: LevelVersion, metadata: dict[str, Any] | None, spec: dict[str, Any] | None) -> Aggregate:
    """EvaluatePod + AggregateCheckResults: the failures of every check of the level at the version,
    in upstream's order. Versions newer than the newest known (and latest) evaluate as the newest.
    Pods of the plain shape that every check allows (screen.py) skip the checks."""
    level, minor = lv.level, lv.minor
    if level == PRIVILEGED:
        return ALLOWED
    if minor == LATEST or minor > NEWEST_MINOR:
        minor = NEWEST_MINOR
    meta, pod_spec = metadata or {}, spec or {}
    containers = pod_containers(pod_spec)
    if plainly_allowed(meta, pod_spec, containers):
        return ALLOWED
    out: list[Violation] = []
    for check in _TABLE[(level, minor)]:
        r = check(meta, pod_spec, containers)
        if r is not None:
            out.append(Violation(r[0] or "unknown forbidden reason", r[1]))
    return Aggregate(tuple(out)) if out else ALLOWED
