"""Events a controller records about the objects it manages (client-go's EventRecorder writing
core/v1 Events): named `<object>.<unix nanoseconds in hex>`, in the object's namespace, created under
the controller's own identity. A refused event is only logged, as upstream's broadcaster drops it."""
from __future__ import annotations

import logging
import time
from typing import Any

from kubegate.api import errors
from kubegate.api.objects import now_rfc3339
from kubegate.controllers.client import ControllerClient

log = logging.getLogger("kubegate.controllers")

WARNING = "Warning"
NORMAL = "Normal"


def has_cause(err: errors.StatusError, reason: str) -> bool:
    """apierrors.HasStatusCause."""
    return any(c.get("reason") == reason for c in (err.details or {}).get("causes") or ())


def event(obj: dict[str, Any], typ: str, reason: str, message: str, component: str) -> dict[str, Any]:
    """What recorder.Eventf sends for `obj` (its object reference, the source, one occurrence)."""
    m = obj["metadata"]
    now = now_rfc3339()
    involved = {"kind": obj["kind"], "namespace": m.get("namespace"), "name": m["name"], "uid": m.get("uid"),
                "apiVersion": obj["apiVersion"], "resourceVersion": m.get("resourceVersion")}
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{m['name']}.{time.time_ns():x}", "namespace": m.get("namespace") or "default"},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason, "message": message, "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": typ, "eventTime": None,
            "reportingComponent": component, "reportingInstance": ""}


async def record(client: ControllerClient, obj: dict[str, Any], typ: str, reason: str, message: str,
                 component: str) -> None:
    ev = event(obj, typ, reason, message, component)
    try:
        await client.create("events", ev, ev["metadata"]["namespace"])
    except errors.StatusError as e:
        log.warning("%s: event %s on %s dropped: %s", component, reason, obj["metadata"]["name"], e.message)
