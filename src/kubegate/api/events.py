"""Conversion between core/v1 Event (the stored form) and events.k8s.io/v1 Event.

Upstream stores one Event type and serves both API groups from it; the field mapping is
pkg/apis/events/v1's conversion (regarding <-> involvedObject, note <-> message, ...).
"""
from __future__ import annotations

from typing import Any

# (events.k8s.io/v1 field, core/v1 field) pairs that map one to one.
_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SAME = ("metadata", "eventTime", "series", "reason", "action", "type", "related")


def to_core(ev: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    for k in _SAME:
        if k in ev:
            out[k] = ev[k]
    for new, old in _RENAMES:
        if new in ev:
            out[old] = ev[new]
    return out


def from_core(ev: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for k in _SAME:
        if k in ev and ev[k] is not None:
            out[k] = ev[k]
    for new, old in _RENAMES:
        v = ev.get(old)
        if v not in (None, "", 0, {}):
            out[new] = v
    if "eventTime" not in out:
        out["eventTime"] = None
    return out
