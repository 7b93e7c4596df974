"""EventRateLimit (plugin/pkg/admission/eventratelimit): token buckets on Event writes per server,
namespace, user, or source and involved object, configured by an
eventratelimit.admission.k8s.io/v1alpha1 Configuration; over the limit -> 429."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.admission.refusals import aggregate
from kubegate.api import errors

LIMIT_TYPES = ("Namespace", "Server", "SourceAndObject", "User")
DEFAULT_CACHE_SIZE = 4096


class TokenBucket:
    """golang.org/x/time/rate as flowcontrol's token-bucket limiter uses it: starts full."""

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps, self.burst, self.clock = qps, burst, clock
        self.tokens = float(burst)
        self.last = clock()

    def try_accept(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _event_key(req: AdmissionRequest) -> str:
    """SourceAndObject: the source and involved object fields run together, as upstream's key."""
    ev = req.obj or {}
    src = ev.get("source") if isinstance(ev.get("source"), dict) else {}
    inv = ev.get("involvedObject") if isinstance(ev.get("involvedObject"), dict) else {}
    return "".join(str(x or "") for x in (src.get("component"), src.get("host"), inv.get("kind"),
                                          inv.get("namespace"), inv.get("name"), inv.get("uid"),
                                          inv.get("apiVersion")))


_KEYS: dict[str, Callable[[AdmissionRequest], str]] = {
    "Server": lambda req: "",
    "Namespace": lambda req: req.namespace,
    "User": lambda req: req.user.name,
    "SourceAndObject": _event_key,
}


class _Enforcer:
    def __init__(self, limit_type: str, qps: float, burst: int, cache_size: int,
                 clock: Callable[[], float]) -> None:
        self.limit_type = limit_type
        self.qps, self.burst, self.clock = qps, burst, clock
        self.cache_size = 1 if limit_type == "Server" else cache_size
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # least recently used first

    def accept(self, req: AdmissionRequest) -> str | None:
        key = _KEYS[self.limit_type](req)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.qps, self.burst, self.clock)
            while len(self.buckets) > self.cache_size:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        if bucket.try_accept():
            return None
        return f"limit reached on type {self.limit_type} for key {key}"


def parse_configuration(conf: dict[str, Any] | None) -> list[tuple[str, float, int, int]]:
    """The limits (type, qps, burst, cacheSize), checked as upstream's ValidateConfiguration."""
    limits = (conf or {}).get("limits") or []
    errs = [] if limits else ["limits: Invalid value: null: must not be empty"]
    out = []
    for i, limit in enumerate(limits if isinstance(limits, list) else []):
        limit = limit if isinstance(limit, dict) else {}
        kind, qps, burst = limit.get("type", ""), limit.get("qps", 0), limit.get("burst", 0)
        cache = limit.get("cacheSize", DEFAULT_CACHE_SIZE)
        if kind not in LIMIT_TYPES:
            errs.append(f'limits[{i}].type: Unsupported value: "{kind}": supported values: '
                        + ", ".join(f'"{t}"' for t in LIMIT_TYPES))
        if not isinstance(qps, int) or isinstance(qps, bool) or qps <= 0:
            errs.append(f"limits[{i}].qps: Invalid value: {qps}: must be positive")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst <= 0:
            errs.append(f"limits[{i}].burst: Invalid value: {burst}: must be positive")
        if not isinstance(cache, int) or cache < 0:
            errs.append(f"limits[{i}].cacheSize: Invalid value: {cache}: must not be negative")
        out.append((kind, qps, burst, cache or DEFAULT_CACHE_SIZE))
    if errs:
        raise ValueError(aggregate(errs))
    return out


class EventRateLimit:
    name = "EventRateLimit"

    def __init__(self, limits: list[tuple[str, float, int, int]], clock: Callable[[], float] = time.monotonic) -> None:
        self.enforcers = [_Enforcer(kind, qps, burst, cache, clock) for kind, qps, burst, cache in limits]

    async def validate(self, req: AdmissionRequest) -> None:
        # Only core Events; dry runs never reach storage and are not counted.
        if req.operation not in (CREATE, UPDATE) or (req.resource.group, req.resource.kind) != ("", "Event") \
                or req.dry_run:
            return
        refusals = [e for e in (enf.accept(req) for enf in self.enforcers) if e]
        if refusals:
            raise errors.StatusError(429, "TooManyRequests", f"Too many requests: {aggregate(refusals)}")


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> EventRateLimit:
    return EventRateLimit(parse_configuration(conf))
