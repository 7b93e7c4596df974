"""ResourceQuota admission (k8s.io/apiserver/pkg/admission/plugin/resourcequota with the core
evaluators of pkg/quota/v1/evaluator/core): a create (or a service/claim update) that would take a
namespace past one of its quotas is refused with upstream's 403, and an admitted one is charged to
the quotas' status.used before it is stored, so back-to-back creates cannot both slip under a limit.
The ResourceQuota controller keeps status current from what is really stored.

The plugin's configuration (ResourceQuotaConfiguration in --admission-control-config-file) may
list `limitedResources`: a resource whose usage names contain one of `matchContains` may only be
consumed in a namespace whose quotas cover that usage name, and a pod that one of `matchScopes`
selects only where a quota selects pods by that scope too. Quantities in messages are printed as
resource.Quantity.String() prints them (`1500m`, `2Gi`, `1e3`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubegate.admission.chain import PluginDeps
from kubegate.admission.extended_resource_toleration import is_extended_resource
from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest, ConfigCache
from kubegate.admission.quantities import Amount, add as _add, amount as _q, render
from kubegate.admission.refusals import aggregate, forbidden
from kubegate.api import errors
from kubegate.api.defaults import qos_class
from kubegate.api.registry import ResourceRegistry
from kubegate.api.validation import quantity

# Object-count names that predate count/<resource>.
_LEGACY_COUNTS = {"pods": "pods", "services": "services", "replicationcontrollers": "replicationcontrollers",
                  "resourcequotas": "resourcequotas", "secrets": "secrets", "configmaps": "configmaps",
                  "persistentvolumeclaims": "persistentvolumeclaims"}
_POD_RESOURCES = {"count/pods", "pods", "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
                  "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"}
# Quotaing these obliges every container to state them (a backward-compatibility rule upstream keeps).
_MUST_SPECIFY = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}

Usage = dict[str, Amount]

_EXPONENT = re.compile(r"[eE][-+]?[0-9]+$")
CONFIG_KIND = "ResourceQuotaConfiguration"
CONFIG_API_VERSIONS = ("apiserver.config.k8s.io/v1", "resourcequota.admission.k8s.io/v1beta1")


@dataclass(frozen=True)
class ScopeRequirement:
    """A ScopedResourceSelectorRequirement; str() is Go's %v of it."""
    scope: str
    operator: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{{{self.scope} {self.operator} [{' '.join(self.values)}]}}"


@dataclass(frozen=True)
class LimitedResource:
    """A ResourceQuotaConfiguration limitedResources entry: consuming usage names that contain
    one of `match_contains` requires a covering quota, and so does an object one of `match_scopes`
    selects (a quota whose scopes select it by the same scope name)."""
    api_group: str
    resource: str
    match_contains: tuple[str, ...]
    match_scopes: tuple[ScopeRequirement, ...] = ()


def _requirement(e: Any) -> ScopeRequirement:
    e = _d(e)
    return ScopeRequirement(str(e.get("scopeName") or ""), str(e.get("operator") or ""),
                            tuple(str(v) for v in e.get("values") or ()))


def parse_configuration(conf: dict[str, Any] | None) -> list[LimitedResource]:
    """The plugin's configuration, checked as upstream's ValidateConfiguration."""
    if not conf:
        return []
    if conf.get("kind") != CONFIG_KIND or conf.get("apiVersion") not in CONFIG_API_VERSIONS:
        raise ValueError(f'no kind "{conf.get("kind", "")}" is registered for version "{conf.get("apiVersion", "")}"')
    out: list[LimitedResource] = []
    errs: list[str] = []
    for i, entry in enumerate(conf.get("limitedResources") or []):
        entry = _d(entry)
        if not entry.get("resource"):
            errs.append(f"limitedResources[{i}].resource: Required value")
        out.append(LimitedResource(str(entry.get("apiGroup") or ""), str(entry.get("resource") or ""),
                                   tuple(str(m) for m in entry.get("matchContains") or ()),
                                   tuple(_requirement(e) for e in entry.get("matchScopes") or ())))
    if errs:
        raise ValueError(aggregate(errs))
    return out


def canonical(v: Any) -> str:
    """resource.Quantity.String() of a quantity as written: the largest suffix of its format
    (binary, decimal or exponent) that keeps the number whole."""
    value = quantity.parse(v)
    text = quantity.render(v)
    if value is None:
        return text
    if not _EXPONENT.search(text.strip()):
        return render(value, text.strip().endswith("i"))
    if value == 0:
        return "0"
    for exp in range(18, -10, -3):
        scaled = value / (Decimal(10) ** exp)
        if scaled == scaled.to_integral_value():
            return f"{int(scaled)}e{exp}" if exp else str(int(scaled))
    return render(value, False)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _pod_resources(spec: dict[str, Any], which: str) -> Usage:
    """resourcehelper.PodRequests / PodLimits: containers summed, each init container a floor, overhead added."""
    total: Usage = {}
    for c in spec.get("containers") or []:
        for k, v in _d(_d(_d(c).get("resources")).get(which)).items():
            _add(total, k, v)
    for c in spec.get("initContainers") or []:
        for k, v in _d(_d(_d(c).get("resources")).get(which)).items():
            value, binary = _q(v)
            if k not in total or total[k][0] < value:
                total[k] = (value, binary)
    for k, v in _d(spec.get("overhead")).items():
        _add(total, k, v)
    return total


def _compute_usage(requests: Usage, limits: Usage) -> Usage:
    """podComputeUsageHelper."""
    out: Usage = {"pods": (Decimal(1), False)}
    for res in ("cpu", "memory", "ephemeral-storage"):
        if res in requests:
            out[res] = out[f"requests.{res}"] = requests[res]
        if res in limits:
            out[f"limits.{res}"] = limits[res]
    for res, v in requests.items():
        if res.startswith("hugepages-"):
            out[res] = out[f"requests.{res}"] = v
        if is_extended_resource(res):
            out[f"requests.{res}"] = v
    return out


def _terminal(pod: dict[str, Any]) -> bool:
    return _d(pod.get("status")).get("phase") in ("Succeeded", "Failed")


def pod_usage(pod: dict[str, Any]) -> Usage:
    usage: Usage = {"count/pods": (Decimal(1), False)}
    if _terminal(pod):
        return usage
    spec = _d(pod.get("spec"))
    usage.update(_compute_usage(_pod_resources(spec, "requests"), _pod_resources(spec, "limits")))
    return usage


def _is_pod_resource(name: str) -> bool:
    return name in _POD_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-")) or (
        name.startswith("requests.") and is_extended_resource(name[len("requests."):]))


def pod_constraints(required: set[str], pod: dict[str, Any]) -> str | None:
    """podEvaluator.Constraints: every container states the cpu/memory the quotas limit."""
    required = required & _MUST_SPECIFY
    missing: dict[str, set[str]] = {}
    spec = _d(pod.get("spec"))
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = _d(_d(c).get("resources"))
            have = set(_compute_usage({k: _q(v) for k, v in _d(res.get("requests")).items()},
                                      {k: _q(v) for k, v in _d(res.get("limits")).items()}))
            for name in required - have:
                missing.setdefault(name, set()).add(str(_d(c).get("name", "")))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))


def _scope_matches(scope: str, operator: str, values: list[str], pod: dict[str, Any]) -> bool:
    spec = _d(pod.get("spec"))
    if scope in ("Terminating", "NotTerminating"):
        terminating = spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] >= 0
        return terminating if scope == "Terminating" else not terminating
    if scope in ("BestEffort", "NotBestEffort"):
        best_effort = qos_class(spec) == "BestEffort"
        return best_effort if scope == "BestEffort" else not best_effort
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        if operator == "Exists":
            return bool(name)
        if operator == "DoesNotExist":
            return not name
        return (name in values) == (operator == "In")
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(spec)
    return False


def _cross_namespace_affinity(spec: dict[str, Any]) -> bool:
    """usesCrossNamespacePodAffinity: a (anti-)affinity term naming namespaces or a namespace selector."""
    affinity = _d(spec.get("affinity"))
    for kind in ("podAffinity", "podAntiAffinity"):
        a = _d(affinity.get(kind))
        terms = [_d(t) for t in a.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        terms += [_d(_d(t).get("podAffinityTerm")) for t in a.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


def _scopes(q: dict[str, Any]) -> list[ScopeRequirement]:
    """getScopeSelectorsFromQuota: spec.scopes as Exists requirements, then the scopeSelector's."""
    spec = _d(q.get("spec"))
    out = [ScopeRequirement(str(s), "Exists") for s in spec.get("scopes") or []]
    out += [_requirement(e) for e in _d(spec.get("scopeSelector")).get("matchExpressions") or []]
    return out


class Evaluator:
    """What an object of one resource counts for (quota.Evaluator); the admission plugin and the
    ResourceQuota controller share it."""

    def __init__(self, group: str, plural: str) -> None:
        self.group, self.plural = group, plural
        self.pod = (group, plural) == ("", "pods")
        self.count_name = f"count/{plural}" + (f".{group}" if group else "")
        self.legacy = _LEGACY_COUNTS.get(plural) if group == "" else None

    def matching(self, hard: list[str]) -> list[str]:
        """MatchingResources: the quota's resources this kind of object can use."""
        if self.pod:
            return [h for h in hard if _is_pod_resource(h)]
        wanted = {self.count_name, self.legacy}
        if self._is_service:
            wanted |= {"services.nodeports", "services.loadbalancers"}
        if self._is_claim:
            wanted.add("requests.storage")
            return [h for h in hard if h in wanted or h.endswith(
                (".storageclass.storage.k8s.io/requests.storage", ".storageclass.storage.k8s.io/persistentvolumeclaims"))]
        return [h for h in hard if h in wanted]

    @property
    def _is_service(self) -> bool:
        return (self.group, self.plural) == ("", "services")

    @property
    def _is_claim(self) -> bool:
        return (self.group, self.plural) == ("", "persistentvolumeclaims")

    def matches_scopes(self, q: dict[str, Any], obj: dict[str, Any]) -> bool:
        """Every scope of the quota selects `obj` (only pods have scopes that can)."""
        return all(self._selects(r, obj) if self.pod else r.scope == "" for r in _scopes(q))

    def matching_scopes(self, requirements: list[ScopeRequirement], obj: dict[str, Any]) -> list[ScopeRequirement]:
        """MatchingScopes: the requirements that select `obj` (none for anything but a pod)."""
        return [r for r in requirements if self._selects(r, obj)] if self.pod else []

    @staticmethod
    def _selects(r: ScopeRequirement, obj: dict[str, Any]) -> bool:
        return _scope_matches(r.scope, r.operator, list(r.values), obj)

    def matches(self, q: dict[str, Any], obj: dict[str, Any]) -> bool:
        return bool(self.matching(list(_d(_d(q.get("status")).get("hard"))))) and self.matches_scopes(q, obj)

    def usage(self, obj: dict[str, Any]) -> Usage:
        if self.pod:
            return pod_usage(obj)
        one = (Decimal(1), False)
        usage: Usage = {self.count_name: one}
        if self.legacy:
            usage[self.legacy] = one
        if self._is_service:
            spec = _d(obj.get("spec"))
            kind = spec.get("type", "ClusterIP")
            if kind == "LoadBalancer":
                usage["services.loadbalancers"] = one
            if kind in ("NodePort", "LoadBalancer"):
                usage["services.nodeports"] = (Decimal(len(spec.get("ports") or [])), False)
        if self._is_claim:
            spec = _d(obj.get("spec"))
            storage = _d(_d(spec.get("resources")).get("requests")).get("storage")
            cls = spec.get("storageClassName") or ""
            if storage is not None:
                usage["requests.storage"] = _q(storage)
                if cls:
                    usage[f"{cls}.storageclass.storage.k8s.io/requests.storage"] = _q(storage)
            if cls:
                usage[f"{cls}.storageclass.storage.k8s.io/persistentvolumeclaims"] = one
        return usage

    def handles(self, operation: str) -> bool:
        if operation == CREATE:
            return True
        return operation == UPDATE and (self._is_service or self._is_claim)


def _pretty(usage: dict[str, str]) -> str:
    return ",".join(f"{k}={usage[k]}" for k in sorted(usage))


def limited_by_default(usage: Usage, limited: list[LimitedResource], group: str, plural: str) -> set[str]:
    """limitedByDefault: the consumed (positive) usage names a limitedResources entry for this
    group/resource matches."""
    return {k for lr in limited if (lr.api_group, lr.resource) == (group, plural)
            for k, (v, _) in usage.items() if v > 0 and any(m in k for m in lr.match_contains)}


def uncovered_scopes(limited_scopes: list[ScopeRequirement],
                     quota_scopes: list[ScopeRequirement]) -> list[ScopeRequirement]:
    """UncoveredQuotaScopes: the limited scopes no quota selected the object by (same scope name)."""
    names = {r.scope for r in quota_scopes}
    return [r for r in limited_scopes if r.scope not in names]


def evaluate(req: AdmissionRequest, quotas: list[dict[str, Any]],
             limited: list[LimitedResource] | None = None) -> dict[str, dict[str, str]]:
    """The new status.used of each quota the request charges (by quota name); raises the 403
    (and, for an uncovered limited scope, upstream's plain error: a 500 without a reason)."""
    ev = Evaluator(req.resource.group, req.resource.plural)
    if not ev.handles(req.operation) or req.obj is None:
        return {}
    must_cover = limited_by_default(ev.usage(req.obj), limited or [], req.resource.group, req.resource.plural)
    # getMatchedLimitedScopes: every entry's matchScopes, whatever resource the entry names.
    limited_scopes = ev.matching_scopes([r for lr in limited or [] for r in lr.match_scopes], req.obj)
    covered: set[str] = set()
    # The scopes by which any quota selects the object, whether or not the quota applies.
    quota_scopes: list[ScopeRequirement] = []
    interesting = []
    for q in sorted(quotas, key=lambda q: str(_d(q.get("metadata")).get("name", ""))):
        quota_scopes += ev.matching_scopes(_scopes(q), req.obj)
        if not ev.matches(q, req.obj):
            continue
        name = str(q["metadata"]["name"])
        status = _d(q.get("status"))
        restricted = ev.matching(list(_d(status.get("hard"))))
        if ev.pod:
            failed = pod_constraints(set(restricted), req.obj)
            if failed:
                raise forbidden(req, f"failed quota: {name}: {failed}")
        used = _d(status.get("used"))
        missing = [r for r in restricted if r not in used]
        if missing:
            raise forbidden(req, f"status unknown for quota: {name}, resources: {','.join(sorted(missing))}")
        interesting.append(q)
        covered.update(restricted)
    if not interesting and not must_cover and not limited_scopes:
        return {}
    delta = ev.usage(req.obj)
    negative = sorted(k for k, (v, _) in delta.items() if v < 0)
    if negative:
        raise forbidden(req, f"quota usage is negative for resource(s): {','.join(negative)}")
    if req.operation == UPDATE and req.old is not None and _d(req.old.get("metadata")).get("resourceVersion"):
        before = ev.usage(req.old)
        delta = {k: (max(v - before.get(k, (Decimal(0), b))[0], Decimal(0)), b) for k, (v, b) in delta.items()}
    delta = {k: v for k, v in delta.items() if v[0] != 0}
    if not delta:
        return {}
    uncovered = must_cover - covered
    if uncovered:
        raise forbidden(req, f"insufficient quota to consume: {','.join(sorted(uncovered))}")
    scopes_uncovered = uncovered_scopes(limited_scopes, quota_scopes)
    if scopes_uncovered:
        raise errors.StatusError(500, "", "insufficient quota to match these scopes: "
                                          f"[{' '.join(str(r) for r in scopes_uncovered)}]")
    charged: dict[str, dict[str, str]] = {}
    for q in interesting:
        status = _d(q.get("status"))
        hard, used = _d(status.get("hard")), _d(status.get("used"))
        requested = {k: v for k, v in delta.items() if k in hard}
        new_used = {k: _q(v) for k, v in used.items()}
        for k, (v, binary) in requested.items():
            old = new_used.get(k)
            new_used[k] = (old[0] + v, old[1]) if old else (v, binary)
        exceeded = sorted(k for k in requested if new_used[k][0] > _q(hard[k])[0])
        if exceeded:
            raise forbidden(req, f"exceeded quota: {q['metadata']['name']}, "
                                 f"requested: {_pretty({k: render(*requested[k]) for k in exceeded})}, "
                                 f"used: {_pretty({k: canonical(used.get(k, '0')) for k in exceeded})}, "
                                 f"limited: {_pretty({k: canonical(hard[k]) for k in exceeded})}")
        charged[str(q["metadata"]["name"])] = {
            k: (used[k] if k in used and k not in requested else render(*v)) for k, v in new_used.items()}
    return charged


class ResourceQuota:
    name = "ResourceQuota"

    def __init__(self, quotas: ResourceRegistry, limited: list[LimitedResource] | None = None) -> None:
        self.quotas = quotas
        self.limited = limited or []
        # limitedResources refuse objects in namespaces without quotas: then the plugin always runs.
        self.configured_by: tuple[ConfigCache, ...] | None = None if self.limited else (quotas.cache,)

    async def validate(self, req: AdmissionRequest) -> None:
        if req.subresource or not req.namespace or req.resource.kind == "Namespace":
            return
        for attempt in range(3):
            # The first look is the watch cache (upstream's lister); after a conflict, a consistent read.
            listed = self._cached(req.namespace) if attempt == 0 else (await self.quotas.list(req.namespace)).items
            if not listed and not self.limited:
                return  # nothing can charge or refuse: skip computing the object's usage
            charged = evaluate(req, [d.obj for d in listed], self.limited)
            if not charged or req.dry_run:
                return
            try:
                await self._charge(req.namespace, {d.obj["metadata"]["name"]: d for d in listed}, charged)
                return
            except errors.StatusError as e:
                if e.reason != "Conflict":
                    raise
        raise forbidden(req, "Operation cannot be fulfilled on resourcequotas: the quotas changed too often; "
                             "please try again")

    def _cached(self, namespace: str) -> list[Any]:
        return [e.object for e in self.quotas.cache.list(self.quotas.resource.list_prefix(namespace)).entries]

    async def _charge(self, namespace: str, current: dict[str, Any], charged: dict[str, dict[str, str]]) -> None:
        for name, used in charged.items():
            q = current[name].obj
            new = {**q, "status": {**_d(q.get("status")), "used": dict(sorted(used.items()))}}
            await self.quotas.update(new, namespace=namespace, name=name, subresource="status", old=current[name])


def factory(conf: dict[str, Any] | None, deps: PluginDeps) -> ResourceQuota:
    return ResourceQuota(deps.by_plural["resourcequotas"], parse_configuration(conf))
