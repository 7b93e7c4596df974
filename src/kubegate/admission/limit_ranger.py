"""LimitRanger (plugin/pkg/admission/limitranger): the namespace's LimitRange objects default
container requests and limits of new pods, then bound pods (per container and per pod) and
persistent volume claims by min, max and maxLimitRequestRatio."""
from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest, ConfigCache
from kubegate.admission.quantities import Amount, add, amount, render
from kubegate.admission.refusals import aggregate, forbidden
from kubegate.api.registry import ResourceRegistry
from kubegate.api.validation import quantity

ANNOTATION = "kubernetes.io/limit-ranger"
_MAX_MILLI = (2**63 - 1) // 1000  # resource.MaxMilliValue

Resources = dict[str, Any]


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _value(q: Any) -> Decimal:
    return quantity.parse(q) or Decimal(0)


def _observed(req: Any, lim: Any, enforced: Any) -> tuple[int, int, int]:
    """requestLimitEnforcedValues: milli-units when all three fit, else whole units (rounded up)."""
    r, l, e = _value(req), _value(lim), _value(enforced)
    whole = [math.ceil(x) for x in (r, l, e)]
    if all(x <= _MAX_MILLI for x in whole):
        return math.ceil(r * 1000), math.ceil(l * 1000), math.ceil(e * 1000)
    return whole[0], whole[1], whole[2]


def _s(q: Any) -> str:
    return quantity.render(q)


def min_constraint(kind: str, name: str, enforced: Any, requests: Resources, limits: Resources) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    r, l, e = _observed(req, lim, enforced)
    if name not in requests:
        return f"minimum {name} usage per {kind} is {_s(enforced)}.  No request is specified"
    if r < e:
        return f"minimum {name} usage per {kind} is {_s(enforced)}, but request is {_s(req)}"
    if name in limits and l < e:
        return f"minimum {name} usage per {kind} is {_s(enforced)}, but limit is {_s(lim)}"
    return None


def max_constraint(kind: str, name: str, enforced: Any, requests: Resources, limits: Resources) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    r, l, e = _observed(req, lim, enforced)
    if name not in limits:
        return f"maximum {name} usage per {kind} is {_s(enforced)}.  No limit is specified"
    if l > e:
        return f"maximum {name} usage per {kind} is {_s(enforced)}, but limit is {_s(lim)}"
    if name in requests and r > e:
        return f"maximum {name} usage per {kind} is {_s(enforced)}, but request is {_s(req)}"
    return None


def max_request_constraint(kind: str, name: str, enforced: Any, requests: Resources) -> str | None:
    req = requests.get(name)
    r, _, e = _observed(req, None, enforced)
    if name not in requests:
        return f"maximum {name} usage per {kind} is {_s(enforced)}.  No request is specified"
    if r > e:
        return f"maximum {name} usage per {kind} is {_s(enforced)}, but request is {_s(req)}"
    return None


def ratio_constraint(kind: str, name: str, enforced: Any, requests: Resources, limits: Resources) -> str | None:
    r, l, _ = _observed(requests.get(name), limits.get(name), enforced)
    if name not in requests or r == 0:
        return (f"{name} max limit to request ratio per {kind} is {_s(enforced)}, but no request is specified or "
                "request is 0")
    if name not in limits or l == 0:
        return (f"{name} max limit to request ratio per {kind} is {_s(enforced)}, but no limit is specified or "
                "limit is 0")
    ratio = l / r
    shown = ratio
    bound = float(math.ceil(_value(enforced)))
    if bound <= _MAX_MILLI:
        ratio *= 1000
        bound = float(math.ceil(_value(enforced) * 1000))
    if ratio > bound:
        return f"{name} max limit to request ratio per {kind} is {_s(enforced)}, but provided ratio is {shown:f}"
    return None


def _container_resources(c: dict[str, Any]) -> tuple[Resources, Resources]:
    res = _d(c.get("resources"))
    return _d(res.get("requests")), _d(res.get("limits"))


def _bounds(kind: str, item: dict[str, Any], requests: Resources, limits: Resources) -> list[str]:
    errs = [min_constraint(kind, k, v, requests, limits) for k, v in sorted(_d(item.get("min")).items())]
    errs += [max_constraint(kind, k, v, requests, limits) for k, v in sorted(_d(item.get("max")).items())]
    errs += [ratio_constraint(kind, k, v, requests, limits)
             for k, v in sorted(_d(item.get("maxLimitRequestRatio")).items())]
    return [e for e in errs if e]


def _pod_totals(spec: dict[str, Any], which: int) -> Resources:
    """podRequests / podLimits: containers summed, each init container as a floor, plus overhead."""
    total: dict[str, Amount] = {}
    for c in spec.get("containers") or []:
        for k, v in _container_resources(_d(c))[which].items():
            add(total, k, v)
    for c in spec.get("initContainers") or []:
        for k, v in _container_resources(_d(c))[which].items():
            if k not in total or total[k][0] < amount(v)[0]:
                total[k] = amount(v)
    for k, v in _d(spec.get("overhead")).items():
        add(total, k, v)
    return {k: render(*v) for k, v in total.items()}


def validate_pod(limit_range: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    spec = _d(pod.get("spec"))
    errs: list[str] = []
    for item in _d(limit_range.get("spec")).get("limits") or []:
        item = _d(item)
        kind = item.get("type")
        if kind == "Container":
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    errs += _bounds("Container", item, *_container_resources(_d(c)))
        elif kind == "Pod":
            errs += _bounds("Pod", item, _pod_totals(spec, 0), _pod_totals(spec, 1))
    return errs


def validate_claim(limit_range: dict[str, Any], pvc: dict[str, Any]) -> list[str]:
    requests = _d(_d(_d(pvc.get("spec")).get("resources")).get("requests"))
    errs: list[str | None] = []
    for item in _d(limit_range.get("spec")).get("limits") or []:
        item = _d(item)
        if item.get("type") == "PersistentVolumeClaim":
            # A claim's limits are not what the user asks for: only requests are bounded.
            errs += [min_constraint("PersistentVolumeClaim", k, v, requests, {})
                     for k, v in sorted(_d(item.get("min")).items())]
            errs += [max_request_constraint("PersistentVolumeClaim", k, v, requests)
                     for k, v in sorted(_d(item.get("max")).items())]
    return [e for e in errs if e]


def default_pod(limit_range: dict[str, Any], pod: dict[str, Any]) -> None:
    """PodMutateLimitFunc: fill missing container requests/limits from the Container items'
    defaultRequest/default, and say so in the kubernetes.io/limit-ranger annotation."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in _d(limit_range.get("spec")).get("limits") or []:
        item = _d(item)
        if item.get("type") == "Container":
            requests.update(_d(item.get("defaultRequest")))
            limits.update(_d(item.get("default")))
    spec = _d(pod.get("spec"))
    notes: list[str] = []
    for key, what in (("containers", "container"), ("initContainers", "init container")):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                notes += _merge(c, requests, limits, what)
    if notes:
        meta = pod.setdefault("metadata", {})
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            annotations = meta["annotations"] = {}
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _merge(c: dict[str, Any], requests: Resources, limits: Resources, what: str) -> list[str]:
    res = c.get("resources")
    if not isinstance(res, dict):
        res = c["resources"] = {}
    have_limits = res.get("limits") if isinstance(res.get("limits"), dict) else {}
    have_requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    set_limits = sorted(k for k in limits if k not in have_limits)
    set_requests = sorted(k for k in requests if k not in have_requests)
    # Resource lists serialize sorted by name, as Go's maps do.
    if set_limits:
        res["limits"] = dict(sorted({**have_limits, **{k: limits[k] for k in set_limits}}.items()))
    if set_requests:
        res["requests"] = dict(sorted({**have_requests, **{k: requests[k] for k in set_requests}}.items()))
    notes = []
    if set_requests:
        notes.append(f"{', '.join(set_requests)} request for {what} {c.get('name', '')}")
    if set_limits:
        notes.append(f"{', '.join(set_limits)} limit for {what} {c.get('name', '')}")
    return notes


class LimitRanger:
    name = "LimitRanger"
    resources = frozenset({("", "pods"), ("", "persistentvolumeclaims")})

    def __init__(self, limit_ranges: ResourceRegistry) -> None:
        self.limit_ranges = limit_ranges
        self.configured_by: tuple[ConfigCache, ...] | None = (limit_ranges.cache,)

    def _applies(self, req: AdmissionRequest) -> str:
        """The kind this request's object is bounded as, or "" (SupportsAttributes)."""
        r = req.resource
        if req.operation not in (CREATE, UPDATE) or req.subresource or r.group != "" or not isinstance(req.obj, dict):
            return ""
        # Containers are immutable: a pod update cannot change what the ranges bound.
        if r.plural == "pods" and req.operation == CREATE:
            return "pods"
        if r.plural == "persistentvolumeclaims":
            if _d(_d(req.old).get("metadata")).get("deletionTimestamp"):
                return ""
            return "persistentvolumeclaims"
        return ""

    async def _ranges(self, namespace: str) -> list[dict[str, Any]]:
        # From the watch cache, as upstream reads its lister: every acknowledged write is already there.
        reg = self.limit_ranges
        return [e.object.obj for e in reg.cache.list(reg.resource.list_prefix(namespace)).entries]

    async def admit(self, req: AdmissionRequest) -> None:
        if self._applies(req) != "pods":
            return
        assert req.obj is not None
        for lr in await self._ranges(req.namespace):
            default_pod(lr, req.obj)

    async def validate(self, req: AdmissionRequest) -> None:
        kind = self._applies(req)
        if not kind:
            return
        assert req.obj is not None
        for lr in await self._ranges(req.namespace):
            errs = validate_pod(lr, req.obj) if kind == "pods" else validate_claim(lr, req.obj)
            if errs:
                raise forbidden(req, aggregate(errs))


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> LimitRanger:
    return LimitRanger(deps.by_plural["limitranges"])
