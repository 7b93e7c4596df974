"""Pod Security levels, policy versions and namespace-label policy resolution
(upstream k8s.io/pod-security-admission/api: constants.go, helpers.go)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from kubegate.api import errors

PRIVILEGED = "privileged"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}

LABEL_PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LEVEL_LABEL = LABEL_PREFIX + "enforce"
ENFORCE_VERSION_LABEL = LABEL_PREFIX + "enforce-version"
AUDIT_LEVEL_LABEL = LABEL_PREFIX + "audit"
AUDIT_VERSION_LABEL = LABEL_PREFIX + "audit-version"
WARN_LEVEL_LABEL = LABEL_PREFIX + "warn"
WARN_VERSION_LABEL = LABEL_PREFIX + "warn-version"
POLICY_LABELS = (ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL, AUDIT_LEVEL_LABEL, AUDIT_VERSION_LABEL,
                 WARN_LEVEL_LABEL, WARN_VERSION_LABEL)

# The newest policy version upstream defines; newer versions evaluate as this one.
NEWEST_MINOR = 37
LATEST = -1  # the minor number standing for "latest"

_VERSION_RE = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)\Z")
_LEVEL_ERR = "must be one of " + ", ".join(LEVELS)
_VERSION_ERR = 'must be "latest" or "v1.x"'


class PolicyError(ValueError):
    """A level or version that does not parse; the text is upstream's field error detail."""


def parse_level(value: str) -> str:
    if value in _LEVEL_RANK:
        return value
    raise PolicyError(_LEVEL_ERR)


def parse_version(value: str) -> int:
    """Returns the minor version, or LATEST."""
    if value == "latest":
        return LATEST
    m = _VERSION_RE.match(value)
    if m is None:
        raise PolicyError(_VERSION_ERR)
    return int(m.group(1))


def compare_levels(a: str, b: str) -> int:
    return _LEVEL_RANK[a] - _LEVEL_RANK[b]


@dataclass(frozen=True)
class LevelVersion:
    level: str
    minor: int  # LATEST or the minor of v1.<minor>

    def __str__(self) -> str:
        return f"{self.level}:{version_string(self.minor)}"

    def equivalent(self, other: LevelVersion) -> bool:
        # A privileged policy means the same at every version.
        return self.level == other.level and (self.level == PRIVILEGED or self.minor == other.minor)


def version_string(minor: int) -> str:
    return "latest" if minor == LATEST else f"v1.{minor}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion
    audit: LevelVersion
    warn: LevelVersion

    def fully_privileged(self) -> bool:
        return self.enforce.level == self.audit.level == self.warn.level == PRIVILEGED

    def equivalent(self, other: Policy) -> bool:
        return (self.enforce.equivalent(other.enforce) and self.audit.equivalent(other.audit)
                and self.warn.equivalent(other.warn))


DEFAULT_POLICY = Policy(LevelVersion(PRIVILEGED, LATEST), LevelVersion(PRIVILEGED, LATEST),
                        LevelVersion(PRIVILEGED, LATEST))


def policy_to_evaluate(labels: Mapping[str, str] | None,
                       defaults: Policy = DEFAULT_POLICY) -> tuple[Policy, list[errors.Cause]]:
    """api.PolicyToEvaluate: the defaults overlaid with the namespace's labels. An invalid enforce
    level fails closed (restricted), invalid audit/warn levels fail open (privileged), an invalid
    version means latest; each invalid label also yields a field error."""
    if not labels:
        return defaults, []
    errs: list[errors.Cause] = []
    enforce, audit, warn = defaults.enforce, defaults.audit, defaults.warn

    def level(label: str, current: str, on_error: str) -> tuple[str, bool]:
        if label not in labels:
            return current, False
        try:
            return parse_level(labels[label]), True
        except PolicyError as e:
            errs.append(errors.field_invalid(f"metadata.labels[{label}]", labels[label], str(e)))
            return on_error, False

    def version(label: str, current: int) -> int:
        if label not in labels:
            return current
        try:
            return parse_version(labels[label])
        except PolicyError as e:
            errs.append(errors.field_invalid(f"metadata.labels[{label}]", labels[label], str(e)))
            return LATEST

    e_level, has_enforce_level = level(ENFORCE_LEVEL_LABEL, enforce.level, RESTRICTED)
    e_minor = version(ENFORCE_VERSION_LABEL, enforce.minor)
    a_level, _ = level(AUDIT_LEVEL_LABEL, audit.level, PRIVILEGED)
    a_minor = version(AUDIT_VERSION_LABEL, audit.minor)
    w_level, _ = level(WARN_LEVEL_LABEL, warn.level, PRIVILEGED)
    w_minor = version(WARN_VERSION_LABEL, warn.minor)
    # Warn defaults to an explicitly set, stricter enforce level.
    if WARN_LEVEL_LABEL not in labels and has_enforce_level and compare_levels(e_level, w_level) > 0:
        w_level = e_level
        if WARN_VERSION_LABEL not in labels:
            w_minor = e_minor
    return Policy(LevelVersion(e_level, e_minor), LevelVersion(a_level, a_minor),
                  LevelVersion(w_level, w_minor)), errs


def aggregate_field_errors(causes: list[errors.Cause]) -> str:
    """field.ErrorList.ToAggregate().Error(): one error bare, several in brackets."""
    parts = [f"{c.field}: {c.message}" for c in causes]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
