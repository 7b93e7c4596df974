"""Events a controller records about the objects it manages (client-go's EventRecorder writing
core/v1 Events): named `<object>.<unix nanoseconds in hex>`, in the object's namespace, created under
the controller's own identity. Each controller's events pass its EventCorrelator first, so a repeated
event is a PATCH of the earlier Event's count and lastTimestamp. A refused event is only logged, as
upstream's broadcaster drops it."""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from kubegate.api import errors
from kubegate.controllers.client import ControllerClient
from kubegate.controllers.event_correlator import EventCorrelator, rfc3339

log = logging.getLogger("kubegate.controllers")

WARNING = "Warning"
NORMAL = "Normal"


def has_cause(err: errors.StatusError, reason: str) -> bool:
    """apierrors.HasStatusCause."""
    return any(c.get("reason") == reason for c in (err.details or {}).get("causes") or ())


def event(obj: dict[str, Any], typ: str, reason: str, message: str, component: str, now_ns: int) -> dict[str, Any]:
    """What recorder.Eventf sends for `obj` (its object reference, the source, one occurrence)."""
    m = obj["metadata"]
    now = rfc3339(now_ns)
    involved = {"kind": obj["kind"], "namespace": m.get("namespace"), "name": m["name"], "uid": m.get("uid"),
                "apiVersion": obj["apiVersion"], "resourceVersion": m.get("resourceVersion")}
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{m['name']}.{now_ns:x}", "namespace": m.get("namespace") or "default"},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason, "message": message, "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": typ, "eventTime": None,
            "reportingComponent": component, "reportingInstance": ""}


class _Sink:
    """One controller's correlator; its writes go one at a time (upstream's broadcaster goroutine), so
    a repeat is correlated only after the Event it repeats is stored."""

    def __init__(self) -> None:
        self.correlator = EventCorrelator()
        self.lock = asyncio.Lock()


# A controller's client identifies it; the sink goes with the client.
_SINKS: weakref.WeakKeyDictionary[ControllerClient, _Sink] = weakref.WeakKeyDictionary()


async def record(client: ControllerClient, obj: dict[str, Any], typ: str, reason: str, message: str,
                 component: str) -> None:
    sink = _SINKS.get(client)
    if sink is None:
        sink = _SINKS[client] = _Sink()
    async with sink.lock:
        now_ns = time.time_ns()
        result = sink.correlator.correlate(event(obj, typ, reason, message, component, now_ns), now_ns)
        ev, namespace = result.event, result.event["metadata"]["namespace"]
        try:
            stored = await _write(client, ev, result.patch, namespace)
        except errors.StatusError as e:
            log.warning("%s: event %s on %s dropped: %s", component, reason, obj["metadata"]["name"], e.message)
            return
        sink.correlator.update_state(stored)


async def _write(client: ControllerClient, ev: dict[str, Any], patch: dict[str, Any] | None,
                 namespace: str) -> dict[str, Any]:
    """recordEvent: the patch of the earlier Event, or a create when there is none (or it is gone)."""
    if patch is not None:
        try:
            return (await client.update("events", namespace, ev["metadata"]["name"],
                                        lambda cur: {**cur, **patch}, verb="patch")).obj
        except errors.StatusError as e:
            if e.code != 404:
                raise
    fresh = {**ev, "metadata": {k: v for k, v in ev["metadata"].items() if k != "resourceVersion"}}
    return (await client.create("events", fresh, namespace)).obj
