"""client-go's EventCorrelator (tools/record/events_cache.go) for the events kubegate's controllers
record, without the spam filter:

- the aggregator: events alike but for their message (same source, involved object, type, reason)
  counted within 10 minutes; from the 10th distinct message on, the event becomes one aggregate
  "(combined from similar events): <message>" event, kept under the similarity key so it is counted
  rather than multiplied;
- the logger: an event seen before (same key) is a patch of the earlier Event (count + 1, new
  lastTimestamp and message) instead of a new object.

Pure: the caller passes the time and writes the result (Event CREATE or PATCH), then reports the
stored Event back with `update_state` so later patches name it.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubegate.api.objects import timestamp_rfc3339

MAX_EVENTS = 10  # defaultAggregateMaxEvents
MAX_INTERVAL_NS = 600 * 1_000_000_000  # defaultAggregateIntervalInSeconds
MAX_CACHE_ENTRIES = 4096  # maxLruCacheEntries
COMBINED_PREFIX = "(combined from similar events): "

K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """The bounded cache upstream's correlator keeps its records in."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def add(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def rfc3339(now_ns: int) -> str:
    return timestamp_rfc3339(now_ns // 1_000_000_000)


def _similarity_key(ev: dict[str, Any]) -> str:
    """EventAggregatorByReasonFunc's aggregate key: everything but the message."""
    src, obj = _d(ev.get("source")), _d(ev.get("involvedObject"))
    return "".join(str(x or "") for x in (
        src.get("component"), src.get("host"), obj.get("kind"), obj.get("namespace"), obj.get("name"),
        obj.get("uid"), obj.get("apiVersion"), ev.get("type"), ev.get("reason"), ev.get("reportingController"),
        ev.get("reportingInstance")))


def event_key(ev: dict[str, Any]) -> str:
    """getEventKey: the full identity of an event, message included."""
    src, obj = _d(ev.get("source")), _d(ev.get("involvedObject"))
    return "".join(str(x or "") for x in (
        src.get("component"), src.get("host"), obj.get("kind"), obj.get("namespace"), obj.get("name"),
        obj.get("fieldPath"), obj.get("uid"), obj.get("apiVersion"), ev.get("type"), ev.get("reason"),
        ev.get("message")))


@dataclass
class _Similar:
    """aggregateRecord: the distinct messages of similar events and when the last one came."""
    messages: set[str] = field(default_factory=set)
    last_ns: int = 0


@dataclass(frozen=True)
class _Observed:
    """eventLog: what the stored Event for a key holds."""
    count: int
    first_timestamp: str
    name: str
    resource_version: str


@dataclass(frozen=True)
class Correlation:
    """What to write: `event` as a new Event, or, when `patch` is set, that patch of the Event named
    event.metadata.name (and `event` as a create should that Event be gone)."""
    event: dict[str, Any]
    patch: dict[str, Any] | None


class EventCorrelator:
    def __init__(self, max_events: int = MAX_EVENTS, max_interval_ns: int = MAX_INTERVAL_NS,
                 cache_size: int = MAX_CACHE_ENTRIES) -> None:
        self.max_events = max_events
        self.max_interval_ns = max_interval_ns
        self._similar: _LRU[str, _Similar] = _LRU(cache_size)
        self._observed: _LRU[str, _Observed] = _LRU(cache_size)

    def correlate(self, ev: dict[str, Any], now_ns: int) -> Correlation:
        aggregated, key = self._aggregate(ev, now_ns)
        return self._observe(aggregated, key)

    def _aggregate(self, ev: dict[str, Any], now_ns: int) -> tuple[dict[str, Any], str]:
        """EventAggregate: the event itself and its key, or past the threshold the aggregate event
        and the similarity key."""
        similarity = _similarity_key(ev)
        record = self._similar.get(similarity)
        if record is None or now_ns - record.last_ns > self.max_interval_ns:
            record = _Similar()
        record.messages.add(str(ev.get("message") or ""))
        record.last_ns = now_ns
        self._similar.add(similarity, record)
        if len(record.messages) < self.max_events:
            return ev, event_key(ev)
        record.messages.pop()  # the set never grows past the threshold
        now = rfc3339(now_ns)
        meta = _d(ev.get("metadata"))
        involved = _d(ev.get("involvedObject"))
        combined = {"apiVersion": ev.get("apiVersion"), "kind": ev.get("kind"),
                    "metadata": {"name": f"{involved.get('name', '')}.{now_ns:x}", "namespace": meta.get("namespace")},
                    "involvedObject": involved, "reason": ev.get("reason"),
                    "message": COMBINED_PREFIX + str(ev.get("message") or ""), "source": ev.get("source"),
                    "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": ev.get("type")}
        return combined, similarity

    def _observe(self, ev: dict[str, Any], key: str) -> Correlation:
        """eventObserve: an event seen before becomes a patch of the Event that recorded it."""
        last = self._observed.get(key)
        patch = None
        if last is not None and last.count > 0:
            meta = {**_d(ev.get("metadata")), "name": last.name}
            if last.resource_version:
                meta["resourceVersion"] = last.resource_version
            ev = {**ev, "metadata": meta, "firstTimestamp": last.first_timestamp, "count": last.count + 1}
            patch = {"count": ev["count"], "lastTimestamp": ev.get("lastTimestamp"), "message": ev.get("message")}
        self._observed.add(key, _observed(ev))
        return Correlation(ev, patch)

    def update_state(self, stored: dict[str, Any]) -> None:
        """UpdateState: the Event as the server stored it (its name and resourceVersion for later patches)."""
        self._observed.add(event_key(stored), _observed(stored))


def _observed(ev: dict[str, Any]) -> _Observed:
    meta = _d(ev.get("metadata"))
    count = ev.get("count")
    return _Observed(count if isinstance(count, int) else 0, str(ev.get("firstTimestamp") or ""),
                     str(meta.get("name") or ""), str(meta.get("resourceVersion") or ""))
