"""The EventCorrelator (client-go tools/record events_cache.go): repeats become patches of the stored
Event, and the 10th distinct message of similar events becomes one aggregate event."""
from __future__ import annotations

from typing import Any

from kubegate.controllers.event_correlator import COMBINED_PREFIX, EventCorrelator, event_key, rfc3339

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def _event(message: str, reason: str = "FailedCreate", name: str = "web-1", now_ns: int = T0) -> dict[str, Any]:
    now = rfc3339(now_ns)
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{name}.{now_ns:x}", "namespace": "ns"},
            "involvedObject": {"kind": "ReplicaSet", "namespace": "ns", "name": name, "uid": "u1",
                               "apiVersion": "apps/v1"},
            "reason": reason, "message": message, "source": {"component": "replicaset-controller"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Warning"}


def _stored(ev: dict[str, Any], rv: str) -> dict[str, Any]:
    """The Event as the server returns it."""
    return {**ev, "metadata": {**ev["metadata"], "resourceVersion": rv}}


def test_first_event_is_created_unchanged() -> None:
    c = EventCorrelator()
    ev = _event("Error creating: quota")
    result = c.correlate(ev, T0)
    assert (result.event, result.patch) == (ev, None)


def test_identical_event_patches_the_stored_one() -> None:
    c = EventCorrelator()
    first = c.correlate(_event("Error creating: quota"), T0).event
    c.update_state(_stored(first, "7"))
    later = T0 + 30 * SECOND
    result = c.correlate(_event("Error creating: quota", now_ns=later), later)
    assert result.patch == {"count": 2, "lastTimestamp": rfc3339(later), "message": "Error creating: quota"}
    assert result.event["metadata"] == {"name": first["metadata"]["name"], "namespace": "ns", "resourceVersion": "7"}
    assert (result.event["firstTimestamp"], result.event["count"]) == (rfc3339(T0), 2)
    c.update_state(_stored({**result.event, "lastTimestamp": rfc3339(later)}, "8"))
    third = c.correlate(_event("Error creating: quota", now_ns=later), later)
    assert third.patch is not None and third.patch["count"] == 3
    assert third.event["metadata"]["resourceVersion"] == "8"


def test_different_object_or_reason_is_a_new_event() -> None:
    c = EventCorrelator()
    c.update_state(_stored(c.correlate(_event("m"), T0).event, "1"))
    assert c.correlate(_event("m", name="web-2"), T0).patch is None
    assert c.correlate(_event("m", reason="FailedDelete"), T0).patch is None


def test_tenth_distinct_message_is_combined() -> None:
    c = EventCorrelator()
    for i in range(9):
        result = c.correlate(_event(f"Error creating: pod {i}"), T0 + i)
        assert result.patch is None and not result.event["message"].startswith(COMBINED_PREFIX)
        c.update_state(_stored(result.event, str(i)))
    now = T0 + 9
    combined = c.correlate(_event("Error creating: pod 9", now_ns=now), now)
    assert combined.patch is None
    ev = combined.event
    assert ev["message"] == COMBINED_PREFIX + "Error creating: pod 9"
    assert ev["metadata"] == {"name": f"web-1.{now:x}", "namespace": "ns"}
    assert (ev["count"], ev["reason"], ev["type"], ev["involvedObject"]["name"]) == (1, "FailedCreate", "Warning",
                                                                                    "web-1")
    # Further similar events count on the combined Event (kept under the similarity key).
    after = c.correlate(_event("Error creating: pod 10", now_ns=now + 1), now + 1)
    assert after.patch == {"count": 2, "lastTimestamp": ev["lastTimestamp"],
                           "message": COMBINED_PREFIX + "Error creating: pod 10"}
    assert after.event["metadata"]["name"] == ev["metadata"]["name"]


def test_similar_events_older_than_the_interval_start_over() -> None:
    c = EventCorrelator()
    for i in range(9):
        c.correlate(_event(f"m{i}"), T0)
    late = T0 + 601 * SECOND
    result = c.correlate(_event("m9", now_ns=late), late)
    assert result.event["message"] == "m9"


def test_cache_is_bounded() -> None:
    c = EventCorrelator(cache_size=2)
    for name in ("a", "b", "c"):
        c.update_state(_stored(c.correlate(_event("m", name=name), T0).event, "1"))
    # "a" was evicted: its repeat is a new event again; "c" is still known.
    assert c.correlate(_event("m", name="a"), T0).patch is None
    assert c.correlate(_event("m", name="c"), T0).patch is not None


def test_event_key_includes_message_and_field_path() -> None:
    ev = _event("m")
    assert event_key(ev) != event_key({**ev, "message": "n"})
    assert event_key(ev) != event_key({**ev, "involvedObject": {**ev["involvedObject"], "fieldPath": "spec"}})
