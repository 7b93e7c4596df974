"""The PodSecurity admission plugin (k8s.io/pod-security-admission/admission/admission.go and
plugin/pkg/admission/security/podsecurity): namespace labels choose the level enforced on pods and
the levels warned about and audited for pods and workload templates."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from kubegate.admission.interface import CREATE, UPDATE, AdmissionRequest
from kubegate.api import errors
from kubegate.podsecurity import api as psa
from kubegate.podsecurity.evaluator import ALLOWED, Aggregate, evaluate_pod

if TYPE_CHECKING:
    from kubegate.admission.chain import PluginDeps

NAME = "PodSecurity"
CONFIG_API_VERSIONS = frozenset({"pod-security.admission.config.k8s.io/v1",
                                 "pod-security.admission.config.k8s.io/v1beta1",
                                 "pod-security.admission.config.k8s.io/v1alpha1"})
_ANNOTATION = "pod-security.kubernetes.io/"
_POLICY_CACHE_SIZE = 1024

# Pod subresources that cannot change what the checks look at.
_IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy",
                                       "status"})
# group, plural -> path to the pod template in the object.
_POD_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
# Upstream's budget for evaluating a namespace's pods when its enforce level tightens.
MAX_PODS_TO_CHECK = 3000
POD_CHECK_BUDGET_SECONDS = 1.0

NamespaceGetter = Callable[[str], dict[str, Any] | None]
PodLister = Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True)
class Exemptions:
    usernames: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    runtime_classes: frozenset[str] = frozenset()


def parse_configuration(config: dict[str, Any] | None) -> tuple[psa.Policy, Exemptions]:
    """PodSecurityConfiguration -> (defaults, exemptions); ValueError names what is wrong."""
    if not config:
        return psa.DEFAULT_POLICY, Exemptions()
    if config.get("kind") != "PodSecurityConfiguration" or config.get("apiVersion") not in CONFIG_API_VERSIONS:
        raise ValueError(f"PodSecurity: unsupported configuration {config.get('apiVersion')}/{config.get('kind')}, "
                         "expected pod-security.admission.config.k8s.io/v1 PodSecurityConfiguration")
    defaults = config.get("defaults") or {}
    problems: list[str] = []

    def mode(name: str) -> psa.LevelVersion:
        level, version = defaults.get(name, psa.PRIVILEGED), defaults.get(f"{name}-version", "latest")
        try:
            lv = psa.LevelVersion(psa.parse_level(level), psa.parse_version(version))
        except psa.PolicyError:
            lv = psa.LevelVersion(psa.PRIVILEGED, psa.LATEST)
        for key, value, parse in ((name, level, psa.parse_level), (f"{name}-version", version, psa.parse_version)):
            try:
                parse(value)
            except psa.PolicyError as e:
                problems.append(f'defaults.{key}: Invalid value: "{value}": {e}')
        return lv

    policy = psa.Policy(mode("enforce"), mode("audit"), mode("warn"))
    ex = config.get("exemptions") or {}

    def names(key: str) -> frozenset[str]:
        values = ex.get(key) or []
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            problems.append(f"exemptions.{key}: must be a list of non-empty strings")
            return frozenset()
        return frozenset(values)

    exemptions = Exemptions(names("usernames"), names("namespaces"), names("runtimeClasses"))
    if problems:
        raise ValueError("PodSecurity configuration is invalid: " + "; ".join(problems))
    return policy, exemptions


def _dig(obj: dict[str, Any] | None, path: tuple[str, ...]) -> dict[str, Any] | None:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj if isinstance(obj, dict) else None


def _significant_container_update(c: dict[str, Any], old: dict[str, Any], ann: dict[str, str],
                                  old_ann: dict[str, str]) -> bool:
    key = "container.seccomp.security.alpha.kubernetes.io/" + c.get("name", "")
    return c.get("image") != old.get("image") or ann.get(key) != old_ann.get(key)


def is_significant_pod_update(pod: dict[str, Any], old: dict[str, Any]) -> bool:
    """Only image changes, container additions/removals and new or changed ephemeral containers are
    re-evaluated on update; everything else the checks look at is immutable."""
    spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    old_ann = (old.get("metadata") or {}).get("annotations") or {}
    for key in ("containers", "initContainers"):
        cs, old_cs = spec.get(key) or [], old_spec.get(key) or []
        if len(cs) != len(old_cs):
            return True
        if any(_significant_container_update(c, o, ann, old_ann) for c, o in zip(cs, old_cs)):
            return True
    old_ephemeral = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or []}
    for c in spec.get("ephemeralContainers") or []:
        o = old_ephemeral.get(c.get("name"))
        if o is None or _significant_container_update(c, o, ann, old_ann):
            return True
    return False


class PodSecurity:
    """A validating plugin: it only refuses (403) or adds warnings and audit annotations."""

    name = NAME
    resources = frozenset({("", "pods"), ("", "namespaces"), *_POD_TEMPLATES})

    def __init__(self, config: dict[str, Any] | None, get_namespace: NamespaceGetter,
                 list_pods: PodLister) -> None:
        self.defaults, self.exemptions = parse_configuration(config)
        self.get_namespace = get_namespace
        self.list_pods = list_pods
        # Parsed policies by the namespace's policy label values: every pod write asks again.
        self._policies: dict[tuple[str | None, ...], tuple[psa.Policy, list[errors.Cause]]] = {}

    async def validate(self, req: AdmissionRequest) -> None:
        if req.operation not in (CREATE, UPDATE):
            return
        r = req.resource
        if r.group == "" and r.plural == "namespaces":
            self._validate_namespace(req)
        elif r.group == "" and r.plural == "pods":
            self._validate_pod(req)
        elif (r.group, r.plural) in _POD_TEMPLATES:
            self._validate_workload(req, _POD_TEMPLATES[(r.group, r.plural)])

    # --- namespaces ---

    def _validate_namespace(self, req: AdmissionRequest) -> None:
        if req.subresource or req.obj is None:
            return
        labels = (req.obj.get("metadata") or {}).get("labels") or {}
        new_policy, new_errs = psa.policy_to_evaluate(labels, self.defaults)
        name = req.name or (req.obj.get("metadata") or {}).get("name", "")
        if req.operation == CREATE:
            if new_errs:
                raise errors.invalid("Namespace", name, new_errs)
            if name in self.exemptions.namespaces:
                self._warn_exempt(req, name, new_policy, labels)
            return
        old_labels = ((req.old or {}).get("metadata") or {}).get("labels") or {}
        old_policy, old_errs = psa.policy_to_evaluate(old_labels, self.defaults)
        if new_errs and (not old_errs or new_errs != old_errs):
            raise errors.invalid("Namespace", name, new_errs)
        new_enforce, old_enforce = new_policy.enforce, old_policy.enforce
        if new_enforce == old_enforce or new_enforce.level == psa.PRIVILEGED:
            return
        if new_enforce.minor == old_enforce.minor and psa.compare_levels(new_enforce.level, old_enforce.level) < 1:
            return
        if name in self.exemptions.namespaces:
            self._warn_exempt(req, name, new_policy, labels)
            return
        req.warnings.extend(self.evaluate_pods_in_namespace(name, new_enforce))

    def _warn_exempt(self, req: AdmissionRequest, name: str, policy: psa.Policy, labels: dict[str, str]) -> None:
        if policy.fully_privileged() or policy.equivalent(self.defaults):
            return
        parts = []
        for mode, lv in (("enforce", policy.enforce), ("audit", policy.audit), ("warn", policy.warn)):
            explicit = psa.LABEL_PREFIX + mode in labels or f"{psa.LABEL_PREFIX}{mode}-version" in labels
            if lv.level != psa.PRIVILEGED and explicit:
                parts.append(f"{mode}={lv}")
        req.warnings.append(f'namespace "{name}" is exempt from Pod Security, and the policy '
                            f"({', '.join(parts)}) will be ignored")

    def evaluate_pods_in_namespace(self, namespace: str, enforce: psa.LevelVersion) -> list[str]:
        """Dry-runs the new enforce level against the namespace's pods (one pod per controller
        first, within upstream's pod count and time budget) and returns the warnings."""
        deadline = time.monotonic() + POD_CHECK_BUDGET_SECONDS
        pods = _prioritize(self.list_pods(namespace))
        total = len(pods)
        pods = pods[:MAX_PODS_TO_CHECK]
        checked = len(pods)
        first_pod: dict[str, str] = {}
        counts: dict[str, int] = {}
        for i, pod in enumerate(pods):
            result = evaluate_pod(enforce, pod.get("metadata"), pod.get("spec"))
            if not result.allowed:
                warning = result.forbidden_reason()
                pod_name = (pod.get("metadata") or {}).get("name", "")
                if warning not in counts or pod_name < first_pod[warning]:
                    first_pod[warning] = pod_name
                counts[warning] = counts.get(warning, 0) + 1
            if time.monotonic() > deadline:
                checked = i + 1
                break
        out = []
        if checked < total:
            out.append(f"new PodSecurity enforce level only checked against the first {checked} of {total} "
                       "existing pods")
        if counts:
            out.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{enforce}"')
        decorated = []
        for warning, n in counts.items():
            others = "" if n == 1 else " (and 1 other pod)" if n == 2 else f" (and {n - 1} other pods)"
            decorated.append(f"{first_pod[warning]}{others}: {warning}")
        return out + sorted(decorated)

    # --- pods and workloads ---

    def _policy_for(self, req: AdmissionRequest) -> tuple[psa.Policy, list[errors.Cause]] | None:
        ns = self.get_namespace(req.namespace)
        if ns is None:
            req.annotations[_ANNOTATION + "error"] = f'failed to lookup namespace "{req.namespace}": not found'
            return None
        labels = (ns.get("metadata") or {}).get("labels") or {}
        get = labels.get
        key = (get(psa.ENFORCE_LEVEL_LABEL), get(psa.ENFORCE_VERSION_LABEL), get(psa.AUDIT_LEVEL_LABEL),
               get(psa.AUDIT_VERSION_LABEL), get(psa.WARN_LEVEL_LABEL), get(psa.WARN_VERSION_LABEL))
        found = self._policies.get(key)
        if found is None:
            if len(self._policies) >= _POLICY_CACHE_SIZE:
                self._policies.clear()
            found = self._policies[key] = psa.policy_to_evaluate(labels, self.defaults)
        return found

    def _exempt(self, req: AdmissionRequest) -> bool:
        if req.namespace in self.exemptions.namespaces:
            req.annotations[_ANNOTATION + "exempt"] = "namespace"
            return True
        if req.user.name in self.exemptions.usernames:
            req.annotations[_ANNOTATION + "exempt"] = "user"
            return True
        return False

    def _validate_pod(self, req: AdmissionRequest) -> None:
        if req.subresource in _IGNORED_POD_SUBRESOURCES or req.obj is None or self._exempt(req):
            return
        found = self._policy_for(req)
        if found is None:
            return
        policy, errs = found
        if not errs and policy.fully_privileged():
            req.annotations[_ANNOTATION + "enforce-policy"] = str(psa.LevelVersion(psa.PRIVILEGED, psa.LATEST))
            return
        if req.operation == UPDATE and req.old is not None and not is_significant_pod_update(req.obj, req.old):
            return
        self._evaluate(req, policy, errs, req.obj.get("metadata"), req.obj.get("spec"), enforce=True)

    def _validate_workload(self, req: AdmissionRequest, template_path: tuple[str, ...]) -> None:
        if req.subresource or req.obj is None or self._exempt(req):
            return
        found = self._policy_for(req)
        if found is None:
            return
        policy, errs = found
        if not errs and policy.warn.level == psa.PRIVILEGED and policy.audit.level == psa.PRIVILEGED:
            return
        template = _dig(req.obj, template_path)
        if template is None or template.get("spec") is None:
            return
        self._evaluate(req, policy, errs, template.get("metadata"), template.get("spec"), enforce=False)

    def _evaluate(self, req: AdmissionRequest, policy: psa.Policy, errs: list[errors.Cause],
                  meta: dict[str, Any] | None, spec: dict[str, Any] | None, enforce: bool) -> None:
        if (spec or {}).get("runtimeClassName") in self.exemptions.runtime_classes:
            req.annotations[_ANNOTATION + "exempt"] = "runtimeClass"
            return
        annotations: dict[str, str] = {}
        if errs:
            annotations[_ANNOTATION + "error"] = "Failed to parse policy: " + psa.aggregate_field_errors(errs)
        denial: errors.StatusError | None = None
        enforced: Aggregate | None = None
        if enforce:
            annotations[_ANNOTATION + "enforce-policy"] = str(policy.enforce)
            enforced = evaluate_pod(policy.enforce, meta, spec)
            if enforced.violations:
                denial = errors.forbidden(req.resource.plural, req.name,
                                          f'violates PodSecurity "{policy.enforce}": {enforced.forbidden_detail()}',
                                          req.resource.group)
        audit = _result(policy.audit, meta, spec, policy.enforce, enforced)
        if audit.violations:
            annotations[_ANNOTATION + "audit-violations"] = (f'would violate PodSecurity "{policy.audit}": '
                                                             f"{audit.forbidden_detail()}")
        req.annotations.update(annotations)
        if denial is not None:
            raise denial
        warn = audit if policy.warn == policy.audit else _result(policy.warn, meta, spec, policy.enforce, enforced)
        if warn.violations:
            req.warnings.append(f'would violate PodSecurity "{policy.warn}": {warn.forbidden_detail()}')


def _result(lv: psa.LevelVersion, meta: dict[str, Any] | None, spec: dict[str, Any] | None,
            enforce: psa.LevelVersion, enforced: Aggregate | None) -> Aggregate:
    """The pod's evaluation at lv (audit or warn), reusing the enforce result when lv repeats it."""
    if lv.level == psa.PRIVILEGED:  # audit and warn mostly are: nothing to evaluate
        return ALLOWED
    if enforced is not None and lv == enforce:
        return enforced
    return evaluate_pod(lv, meta, spec)


def _prioritize(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods without a controller or the first of each controller come first, the rest after."""
    seen: set[str] = set()
    first, rest = [], []
    for pod in pods:
        ref = next((o for o in (pod.get("metadata") or {}).get("ownerReferences") or () if o.get("controller")),
                   None)
        if ref is None or ref.get("uid") not in seen:
            first.append(pod)
            if ref is not None:
                seen.add(ref.get("uid"))
        else:
            rest.append(pod)
    return first + rest


def factory(config: dict[str, Any] | None, deps: PluginDeps) -> PodSecurity:
    """The chain's factory: namespaces and pods are read from the watch caches."""
    pods = deps.by_plural["pods"]

    def list_pods(namespace: str) -> list[dict[str, Any]]:
        entries, _, _ = pods.cache.list(pods.resource.list_prefix(namespace))
        return [e.object.obj for e in entries]

    return PodSecurity(config, lambda name: deps.cached("namespaces", None, name), list_pods)
