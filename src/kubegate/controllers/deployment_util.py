"""The pure arithmetic and status rules of the Deployment controller (upstream
pkg/controller/deployment/util/deployment_util.go, progress.go and sync.go's scale): fenceposts,
rollout steps, proportional scaling, the Available/Progressing conditions with the progress
deadline, and the annotations a ReplicaSet carries. No I/O; the controller calls these."""
from __future__ import annotations

import math
from datetime import datetime
from typing import Any

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations a ReplicaSet does not inherit (upstream skipCopyAnnotation).
NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
              DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to"}
MAX_REVISION_HISTORY_CHARS = 2000  # the controller's maxRevHistoryLengthInChars
NO_DEADLINE = 2**31 - 1  # math.MaxInt32: progressDeadlineSeconds that means "no deadline"

# Condition reasons (deployment_util.go).
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


def scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def desired(d: dict[str, Any]) -> int:
    return int((d.get("spec") or {}).get("replicas", 1))


def is_recreate(d: dict[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate"


def fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """(MaxSurge, MaxUnavailable) as upstream ResolveFenceposts resolves them; both 0 for Recreate."""
    spec = d.get("spec") or {}
    want = desired(d)
    if is_recreate(d):
        return 0, 0
    ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled(ru.get("maxSurge", "25%"), want, True)
    unavailable = scaled(ru.get("maxUnavailable", "25%"), want, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, want)


def replicas(rs: dict[str, Any] | None) -> int:
    return int(((rs or {}).get("spec") or {}).get("replicas", 0))


def status_int(obj: dict[str, Any] | None, key: str) -> int:
    return int(((obj or {}).get("status") or {}).get(key, 0))


def revision(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def by_creation(rs: dict[str, Any]) -> tuple[str, str]:
    """controller.ReplicaSetsByCreationTimestamp: oldest first, the name breaking ties."""
    return rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]


def active(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """controller.FilterActiveReplicaSets."""
    return [rs for rs in sets if replicas(rs) > 0]


# -- conditions --------------------------------------------------------------------------------

def get_condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == ctype), None)


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    conditions = [c for c in status.get("conditions") or () if c.get("type") != ctype]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def set_condition(status: dict[str, Any], ctype: str, cstatus: str, reason: str, message: str, now: str) -> None:
    """Upstream SetDeploymentCondition: unchanged status and reason keep the condition; otherwise it
    is replaced (keeping lastTransitionTime when only the reason changed) and moves to the end."""
    current = get_condition(status, ctype)
    if current is not None and current["status"] == cstatus and current["reason"] == reason:
        return
    transition = current["lastTransitionTime"] if current is not None and current["status"] == cstatus else now
    cond = {"type": ctype, "status": cstatus, "lastUpdateTime": now, "lastTransitionTime": transition,
            "reason": reason, "message": message}
    status["conditions"] = [c for c in status.get("conditions") or () if c["type"] != ctype] + [cond]


def has_progress_deadline(d: dict[str, Any]) -> bool:
    seconds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return seconds is not None and int(seconds) != NO_DEADLINE


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def deployment_complete(d: dict[str, Any], status: dict[str, Any]) -> bool:
    want = desired(d)
    return (int(status.get("updatedReplicas", 0)) == want and int(status.get("replicas", 0)) == want
            and int(status.get("availableReplicas", 0)) == want
            and int(status.get("observedGeneration", 0)) >= int(d["metadata"].get("generation", 0)))


def deployment_progressing(d: dict[str, Any], status: dict[str, Any]) -> bool:
    """More updated, fewer old, more ready or more available replicas than the stored status."""
    old = d.get("status") or {}

    def n(s: dict[str, Any], k: str) -> int:
        return int(s.get(k, 0))
    return (n(status, "updatedReplicas") > n(old, "updatedReplicas")
            or n(status, "replicas") - n(status, "updatedReplicas") < n(old, "replicas") - n(old, "updatedReplicas")
            or n(status, "readyReplicas") > n(old, "readyReplicas")
            or n(status, "availableReplicas") > n(old, "availableReplicas"))


def deployment_timed_out(d: dict[str, Any], status: dict[str, Any], now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond["reason"] == NEW_RS_AVAILABLE:
        return False
    if cond["reason"] == TIMED_OUT:
        return True
    return _epoch(cond["lastUpdateTime"]) + int(d["spec"]["progressDeadlineSeconds"]) < now


def calculate_status(d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                     now: str) -> dict[str, Any]:
    """Upstream calculateStatus: counts from the ReplicaSets, the stored conditions, Available set."""
    available = sum(status_int(rs, "availableReplicas") for rs in all_rs)
    counts = {"observedGeneration": int(d["metadata"].get("generation", 0)),
              "replicas": sum(status_int(rs, "replicas") for rs in all_rs),
              "updatedReplicas": status_int(new_rs, "replicas"),
              "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in all_rs),
              "availableReplicas": available,
              "unavailableReplicas": max(sum(replicas(rs) for rs in all_rs) - available, 0)}
    old = d.get("status") or {}
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}  # omitempty
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    _, max_unavailable = fenceposts(d)
    if available >= desired(d) - max_unavailable:
        set_condition(status, "Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", now)
    else:
        set_condition(status, "Available", "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", now)
    return status


def rollout_status(d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None,
                   now: str, now_epoch: float) -> dict[str, Any]:
    """The status syncRolloutStatus writes: calculateStatus plus the Progressing estimate against
    the progress deadline and the ReplicaSets' ReplicaFailure condition."""
    status = calculate_status(d, all_rs, new_rs, now)
    if not has_progress_deadline(d):
        remove_condition(status, "Progressing")
    current = get_condition(d.get("status") or {}, "Progressing")
    complete_before = (int(status.get("replicas", 0)) == int(status.get("updatedReplicas", 0))
                       and current is not None and current["reason"] == NEW_RS_AVAILABLE)
    name = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None else f'Deployment "{d["metadata"]["name"]}"'
    if has_progress_deadline(d) and not complete_before:
        if deployment_complete(d, status):
            set_condition(status, "Progressing", "True", NEW_RS_AVAILABLE, f"{name} has successfully progressed.", now)
        elif deployment_progressing(d, status):
            # Progress refreshes lastUpdateTime even with the same reason (the deadline restarts).
            transition = current["lastTransitionTime"] if current is not None and current["status"] == "True" else now
            remove_condition(status, "Progressing")
            set_condition(status, "Progressing", "True", RS_UPDATED, f"{name} is progressing.", now)
            get_condition(status, "Progressing")["lastTransitionTime"] = transition  # type: ignore[index]
        elif deployment_timed_out(d, status, now_epoch):
            set_condition(status, "Progressing", "False", TIMED_OUT, f"{name} has timed out progressing.", now)
    failure = replica_failure(all_rs, new_rs)
    if failure is not None:
        set_condition(status, "ReplicaFailure", failure["status"], failure["reason"], failure["message"],
                      failure["lastTransitionTime"])
    else:
        remove_condition(status, "ReplicaFailure")
    return status


def replica_failure(all_rs: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> dict[str, Any] | None:
    """getReplicaFailures: the new ReplicaSet's ReplicaFailure condition first, else any old one's."""
    for rs in ([new_rs] if new_rs is not None else []) + all_rs:
        for c in (rs.get("status") or {}).get("conditions") or ():
            if c.get("type") == "ReplicaFailure":
                return c
    return None


def requeue_after(d: dict[str, Any], status: dict[str, Any], now: float) -> float | None:
    """requeueStuckDeployment: seconds until the deadline must be re-checked without an event, or
    None when no check is due (no deadline, no Progressing condition, complete or timed out)."""
    current = get_condition(d.get("status") or {}, "Progressing")
    if not has_progress_deadline(d) or current is None:
        return None
    if deployment_complete(d, status) or current["reason"] == TIMED_OUT:
        return None
    after = _epoch(current["lastUpdateTime"]) + int(d["spec"]["progressDeadlineSeconds"]) - now
    return max(after, 0.0) + 1.0  # a second more, against clock skew between writes and timers


def paused_condition(d: dict[str, Any], now: str) -> dict[str, Any] | None:
    """checkPausedConditions: the status with the Unknown DeploymentPaused/DeploymentResumed
    condition when pausing or resuming changes it, else None."""
    if not has_progress_deadline(d):
        return None
    status = dict(d.get("status") or {})
    cond = get_condition(status, "Progressing")
    if cond is not None and cond["reason"] == TIMED_OUT:
        return None
    paused_exists = cond is not None and cond["reason"] == PAUSED
    if (d.get("spec") or {}).get("paused") and not paused_exists:
        set_condition(status, "Progressing", "Unknown", PAUSED, "Deployment is paused", now)
    elif not (d.get("spec") or {}).get("paused") and paused_exists:
        set_condition(status, "Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
    else:
        return None
    return status


# -- rollout steps -----------------------------------------------------------------------------

def new_rs_replicas(d: dict[str, Any], all_rs: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
    """Upstream NewRSNewReplicas."""
    want = desired(d)
    if is_recreate(d):
        return want
    surge, _ = fenceposts(d)
    current = sum(replicas(rs) for rs in all_rs)
    if current >= want + surge:
        return replicas(new_rs)
    return replicas(new_rs) + min(want + surge - current, max(want - replicas(new_rs), 0))


def old_scale_down(d: dict[str, Any], all_rs: list[dict[str, Any]], old: list[dict[str, Any]],
                   new_rs: dict[str, Any]) -> dict[str, int]:
    """Upstream reconcileOldReplicaSets' cleanupUnhealthyReplicas: old ReplicaSet name -> new size."""
    if not sum(replicas(rs) for rs in old):
        return {}
    _, max_unavailable = fenceposts(d)
    all_pods = sum(replicas(rs) for rs in all_rs)
    new_unavailable = replicas(new_rs) - status_int(new_rs, "availableReplicas")
    budget = all_pods - (desired(d) - max_unavailable) - new_unavailable
    out: dict[str, int] = {}
    for rs in sorted(old, key=by_creation):
        if budget <= 0:
            break
        unhealthy = replicas(rs) - status_int(rs, "availableReplicas")
        if replicas(rs) == 0 or unhealthy <= 0:
            continue
        down = min(budget, unhealthy)
        out[rs["metadata"]["name"]] = replicas(rs) - down
        budget -= down
    return out


def find_active_or_latest(new_rs: dict[str, Any] | None, old: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The only active ReplicaSet, or the newest when none is active; None with several active."""
    if new_rs is None and not old:
        return None
    newest_first = sorted(old, key=by_creation, reverse=True)
    sets = active(newest_first + ([new_rs] if new_rs is not None else []))
    if not sets:
        return new_rs if new_rs is not None else newest_first[0]
    return sets[0] if len(sets) == 1 else None


def is_saturated(d: dict[str, Any], rs: dict[str, Any] | None) -> bool:
    if rs is None:
        return False
    try:
        want = int((rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    return replicas(rs) == desired(d) == want and status_int(rs, "availableReplicas") == desired(d)


def _max_replicas_annotation(rs: dict[str, Any]) -> int | None:
    try:
        return int((rs["metadata"].get("annotations") or {})[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def _fraction(rs: dict[str, Any], d: dict[str, Any]) -> int:
    """getReplicaSetFraction: this set's share of the new maximum, by its share of the old one."""
    if desired(d) == 0:
        return -replicas(rs)
    surge, _ = fenceposts(d)
    max_now = desired(d) + surge
    max_before = _max_replicas_annotation(rs)
    if not max_before:
        # Edited by hand: fall back to the deployment's current size (upstream does the same).
        max_before = status_int(d, "replicas")
        if not max_before:
            return 0
    exact = replicas(rs) * max_now / max_before
    return int(math.floor(exact + 0.5)) - replicas(rs)  # integer.RoundToInt32: half away from zero


def proportion(rs: dict[str, Any], d: dict[str, Any], to_add: int, added: int) -> int:
    """GetProportion: bounded by what is left to add (up) or to remove (down)."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: dict[str, Any], new_rs: dict[str, Any] | None, old: list[dict[str, Any]]
                       ) -> list[tuple[dict[str, Any], int]]:
    """sync.go scale() for a rolling Deployment with several active ReplicaSets: the replicas the new
    maximum (replicas + maxSurge) adds or removes, spread in proportion to each set's size, largest
    first (newer first scaling up, older first scaling down), leftovers to the first."""
    sets = active(old + ([new_rs] if new_rs is not None else []))
    current = sum(replicas(rs) for rs in sets)
    surge, _ = fenceposts(d)
    allowed = desired(d) + surge if desired(d) > 0 else 0
    to_add = allowed - current
    if to_add > 0:
        # ReplicaSetsBySizeNewer: larger first; equal sizes newer first.
        sets.sort(key=by_creation, reverse=True)
        sets.sort(key=replicas, reverse=True)
    elif to_add < 0:
        sets.sort(key=by_creation)  # ReplicaSetsBySizeOlder: larger first; equal sizes older first
        sets.sort(key=replicas, reverse=True)
    added = 0
    sizes: list[tuple[dict[str, Any], int]] = []
    for rs in sets:
        p = proportion(rs, d, to_add, added) if to_add else 0
        sizes.append((rs, replicas(rs) + p))
        added += p
    if sizes and to_add:
        first, size = sizes[0]
        sizes[0] = (first, max(size + to_add - added, 0))
    return sizes


# -- annotations -------------------------------------------------------------------------------

def replicas_annotations(d: dict[str, Any]) -> dict[str, str]:
    """SetReplicasAnnotations: the size of the Deployment a ReplicaSet was last scaled for."""
    surge, _ = fenceposts(d)
    return {DESIRED_REPLICAS: str(desired(d)), MAX_REPLICAS: str(desired(d) + surge)}


def new_rs_annotations(d: dict[str, Any], current: dict[str, str], new_revision: int, exists: bool
                       ) -> dict[str, str]:
    """SetNewReplicaSetAnnotations: the Deployment's copied annotations, the revision raised to
    `new_revision` (keeping the former one in revision-history when a rollback re-uses this set),
    and for a set about to be created, the replicas annotations."""
    out = dict(current)
    out.update({k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED})
    old_text = current.get(REVISION)
    try:
        old_revision = int(old_text) if old_text is not None else 0
    except ValueError:
        return dict(current)  # an unparsable revision is left alone, as upstream
    if old_revision < new_revision:
        out[REVISION] = str(new_revision)
        if old_text is not None:
            out[REVISION_HISTORY] = _history(current.get(REVISION_HISTORY, ""), old_text)
    if not exists:
        out.update(replicas_annotations(d))
    return out


def _history(history: str, old: str) -> str:
    """The revision-history list with `old` appended, oldest entries dropped past the length limit."""
    if not history:
        return old
    entries = history.split(",")
    total = len(history) + len(old) + 1
    start = 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total > MAX_REVISION_HISTORY_CHARS:
        return history
    return ",".join(entries[start:] + [old])
