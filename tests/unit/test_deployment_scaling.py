"""The Deployment controller's pure arithmetic: proportional scaling during a rollout (upstream
sync.go scale() and GetProportion), the replicas annotations, the revision history, and the
progress-deadline rules of syncRolloutStatus / requeueStuckDeployment."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.controllers import deployment_util as du
from kubegate.controllers.deployment import cleanable, is_scaling_event


def _deploy(replicas: int, surge: Any = 3, unavailable: Any = 2, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     **spec}}


def _rs(name: str, size: int, created: str, max_replicas: int | None = None, desired: int | None = None,
        **status: int) -> dict[str, Any]:
    annotations = {}
    if max_replicas is not None:
        annotations[du.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        annotations[du.DESIRED_REPLICAS] = str(desired)
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "spec": {"replicas": size}, "status": status}


def _sizes(d: dict[str, Any], new: dict[str, Any] | None, old: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(rs["metadata"]["name"], size) for rs, size in du.proportional_sizes(d, new, old)]


def test_scale_up_during_rollout_is_proportional_largest_first() -> None:
    old = _rs("old", 8, "2026-01-01T00:00:00Z", 13)
    new = _rs("new", 5, "2026-01-02T00:00:00Z", 13)
    # 10 -> 20 replicas, surge 3: 23 allowed, 10 to add: 8*23/13 = 14.15 -> +6, 5*23/13 = 8.85 -> +4.
    assert _sizes(_deploy(20), new, [old]) == [("old", 14), ("new", 9)]


def test_scale_down_during_rollout_is_proportional() -> None:
    old = _rs("old", 14, "2026-01-01T00:00:00Z", 23)
    new = _rs("new", 9, "2026-01-02T00:00:00Z", 23)
    assert _sizes(_deploy(5), new, [old]) == [("old", 5), ("new", 3)]
    # to zero: every set loses its whole size
    assert _sizes(_deploy(0), new, [old]) == [("old", 0), ("new", 0)]


def test_leftovers_go_to_the_first_and_ties_prefer_newer_up_older_down() -> None:
    a = _rs("a", 2, "2026-01-01T00:00:00Z", 5)
    b = _rs("b", 2, "2026-01-02T00:00:00Z", 5)
    c = _rs("c", 1, "2026-01-03T00:00:00Z", 5)
    # 5 -> 6 (surge 0, unavailable 1): 1 to add; fractions 2*6/5 = 2.4 -> 0 each, so the leftover goes
    # to the first: the newer of the two largest.
    assert _sizes(_deploy(6, 0, 1), c, [a, b]) == [("b", 3), ("a", 2), ("c", 1)]
    # 5 -> 4: 1 to remove; 2*4/5 = 1.6 -> 2 (no change), 1*4/5 = 0.8 -> 1: the older of the largest loses it.
    assert _sizes(_deploy(4, 0, 1), c, [a, b]) == [("a", 1), ("b", 2), ("c", 1)]


def test_missing_max_replicas_annotation_falls_back_to_status_replicas() -> None:
    d = _deploy(20)
    d["status"] = {"replicas": 13}
    old = _rs("old", 8, "2026-01-01T00:00:00Z")
    new = _rs("new", 5, "2026-01-02T00:00:00Z")
    assert _sizes(d, new, [old]) == [("old", 14), ("new", 9)]


def test_proportion_is_bounded_by_what_is_left() -> None:
    rs = _rs("x", 10, "2026-01-01T00:00:00Z", 10)
    assert du.proportion(rs, _deploy(100, 0, 1), 5, 0) == 5     # fraction 90, only 5 to add
    assert du.proportion(rs, _deploy(1, 0, 1), -3, 0) == -3     # fraction -9, only 3 to remove
    assert du.proportion(rs, _deploy(100, 0, 1), 5, 5) == 0
    assert du.proportion(_rs("z", 0, "2026-01-01T00:00:00Z", 10), _deploy(100, 0, 1), 5, 0) == 0


def test_active_or_latest_and_saturation() -> None:
    older = _rs("older", 0, "2026-01-01T00:00:00Z")
    newer = _rs("newer", 0, "2026-01-02T00:00:00Z")
    assert du.find_active_or_latest(None, [older, newer]) is newer
    new = _rs("new", 3, "2026-01-03T00:00:00Z")
    assert du.find_active_or_latest(new, [older, newer]) is new
    assert du.find_active_or_latest(new, [_rs("busy", 1, "2026-01-01T00:00:00Z")]) is None
    d = _deploy(3)
    assert du.is_saturated(d, _rs("n", 3, "t", desired=3, availableReplicas=3))
    assert not du.is_saturated(d, _rs("n", 3, "t", desired=3, availableReplicas=2))
    assert not du.is_saturated(d, _rs("n", 3, "t"))


def test_scaling_event_reads_desired_replicas_of_active_sets() -> None:
    d = _deploy(20)
    assert is_scaling_event(d, _rs("n", 5, "t", desired=10), [])
    assert not is_scaling_event(d, _rs("n", 5, "t", desired=20), [_rs("o", 0, "t", desired=10)])
    assert not is_scaling_event(d, _rs("n", 5, "t"), [])


def test_replicas_annotations_and_revision_history() -> None:
    d = _deploy(10, "25%", "25%")
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "why", du.REVISION: "9",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    created = du.new_rs_annotations(d, {}, 1, exists=False)
    assert created == {"kubernetes.io/change-cause": "why", du.REVISION: "1",
                       du.DESIRED_REPLICAS: "10", du.MAX_REPLICAS: "13"}
    # Rolling back to a set of revision 1 while the newest is 4: it becomes 5, remembering 1.
    rolled = du.new_rs_annotations(d, {du.REVISION: "1", du.DESIRED_REPLICAS: "3"}, 5, exists=True)
    assert rolled[du.REVISION] == "5" and rolled[du.REVISION_HISTORY] == "1"
    assert rolled[du.DESIRED_REPLICAS] == "3"  # existing sets get them when scaled
    again = du.new_rs_annotations(d, rolled | {du.REVISION: "6"}, 8, exists=True)
    assert again[du.REVISION_HISTORY] == "1,6"
    assert du.new_rs_annotations(d, {du.REVISION: "7"}, 5, exists=True)[du.REVISION] == "7"


def test_revision_history_is_capped_oldest_first() -> None:
    history = ",".join(str(n) for n in range(1000, 1400))  # 1999 characters
    assert len(history) == 1999
    out = du._history(history, "9999")
    assert out.endswith(",9999") and out.startswith("1001,") and len(out) <= du.MAX_REVISION_HISTORY_CHARS


def test_cleanup_takes_lowest_revisions_beyond_the_limit_that_are_empty() -> None:
    def rs(name: str, rev: int, size: int = 0) -> dict[str, Any]:
        r = _rs(name, size, f"2026-01-0{rev}T00:00:00Z")
        r["metadata"]["annotations"][du.REVISION] = str(rev)
        return r
    d = _deploy(1, revisionHistoryLimit=1)
    old = [rs("r3", 3), rs("r1", 1, size=1), rs("r2", 2)]
    # Two beyond the limit (r1, r2): r1 still has replicas and is skipped, not replaced by r3.
    assert [r["metadata"]["name"] for r in cleanable(d, old)] == ["r2"]


def _status(d: dict[str, Any], cond: dict[str, Any] | None, **counts: int) -> None:
    d["status"] = {**counts, "conditions": [cond] if cond else []}


def test_progress_deadline_times_out_and_requeues_at_the_deadline() -> None:
    d = _deploy(2, progressDeadlineSeconds=10)
    t0 = du._epoch("2026-01-01T00:00:00Z")
    cond = {"type": "Progressing", "status": "True", "reason": du.RS_UPDATED, "message": "m",
            "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    _status(d, cond, replicas=2, updatedReplicas=2, observedGeneration=1)
    rs = _rs("d-1", 2, "t", replicas=2)
    same = du.rollout_status(d, [rs], rs, "2026-01-01T00:00:05Z", t0 + 5)
    assert du.get_condition(same, "Progressing") == cond
    assert du.requeue_after(d, same, t0 + 5) == pytest.approx(6.0)   # 5 s left, plus one
    late = du.rollout_status(d, [rs], rs, "2026-01-01T00:00:11Z", t0 + 11)
    timed_out = du.get_condition(late, "Progressing")
    assert timed_out is not None
    assert (timed_out["status"], timed_out["reason"], timed_out["message"]) == (
        "False", du.TIMED_OUT, 'ReplicaSet "d-1" has timed out progressing.')
    d["status"] = late
    assert du.requeue_after(d, late, t0 + 12) is None


def test_progress_refreshes_last_update_time_and_completion() -> None:
    d = _deploy(2)
    cond = {"type": "Progressing", "status": "True", "reason": du.RS_UPDATED, "message": "m",
            "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    _status(d, cond, replicas=2, updatedReplicas=1, observedGeneration=1)
    rs = _rs("d-1", 2, "t", replicas=2)
    moved = du.get_condition(du.rollout_status(d, [rs], rs, "2026-01-01T00:01:00Z", 0), "Progressing")
    assert moved is not None
    assert (moved["lastUpdateTime"], moved["lastTransitionTime"]) == ("2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z")
    done = _rs("d-1", 2, "t", replicas=2, availableReplicas=2)
    complete = du.rollout_status(d, [done], done, "2026-01-01T00:02:00Z", 0)
    assert du.get_condition(complete, "Progressing")["reason"] == du.NEW_RS_AVAILABLE  # type: ignore[index]
    assert du.get_condition(complete, "Available")["reason"] == du.MIN_AVAILABLE  # type: ignore[index]
    assert "unavailableReplicas" not in complete


def test_pause_and_resume_conditions() -> None:
    d = _deploy(1, paused=True)
    d["status"] = {}
    paused = du.paused_condition(d, "t1")
    assert paused is not None and paused["conditions"][0]["reason"] == du.PAUSED
    d["status"] = paused
    assert du.paused_condition(d, "t2") is None
    d["spec"]["paused"] = False
    resumed = du.paused_condition(d, "t3")
    assert resumed is not None
    assert [(c["status"], c["reason"], c["message"]) for c in resumed["conditions"]] == [
        ("Unknown", du.RESUMED, "Deployment is resumed")]
    d["spec"]["progressDeadlineSeconds"] = du.NO_DEADLINE
    assert du.paused_condition(d, "t4") is None
