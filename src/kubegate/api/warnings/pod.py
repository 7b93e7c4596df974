"""Warnings for pod specs, after pkg/api/pod/warnings.go (GetWarningsForPod, GetWarningsForPodTemplate).

Pure: each function takes the stored form of the object (after defaulting) and returns upstream's texts,
field paths prefixed as upstream prefixes them ("" for a pod, "spec.template." for a workload's template).
Go iterates maps in random order; keys are sorted here so the output is stable.
"""
from __future__ import annotations

import math
from typing import Any

from kubegate.admission.quantities import amount, render
from kubegate.api.validation.common import d, lst, s
from kubegate.api.validation.core import CONTAINER_LISTS
from kubegate.authz.messages import go_quote

# pkg/api/node/util.go deprecatedNodeLabels
DEPRECATED_NODE_LABELS = {
    "beta.kubernetes.io/arch": 'deprecated since v1.14; use "kubernetes.io/arch" instead',
    "beta.kubernetes.io/os": 'deprecated since v1.14; use "kubernetes.io/os" instead',
    "failure-domain.beta.kubernetes.io/region": 'deprecated since v1.17; use "topology.kubernetes.io/region" instead',
    "failure-domain.beta.kubernetes.io/zone": 'deprecated since v1.17; use "topology.kubernetes.io/zone" instead',
    "beta.kubernetes.io/instance-type": 'deprecated since v1.17; use "node.kubernetes.io/instance-type" instead',
    "app.kubernetes.io/created-by": "deprecated since v1.9",
    "scheduler.alpha.kubernetes.io/preferAvoidPods": "deprecated since v1.22; use Taints and Tolerations instead",
    "node-role.kubernetes.io/master": 'use "node-role.kubernetes.io/control-plane" instead',
}
_DEPRECATED_ANNOTATIONS = (
    ("scheduler.alpha.kubernetes.io/critical-pod",
     'non-functional in v1.16+; use the "priorityClassName" field instead'),
    ("security.alpha.kubernetes.io/sysctls", 'non-functional in v1.11+; use the "sysctls" field instead'),
    ("security.alpha.kubernetes.io/unsafe-sysctls", 'non-functional in v1.11+; use the "sysctls" field instead'),
)
_DEPRECATED_VOLUMES = (  # checked in this order for each volume
    ("photonPersistentDisk", "deprecated in v1.11, non-functional in v1.16+"),
    ("gitRepo", "deprecated in v1.11"),
    ("scaleIO", "deprecated in v1.16, non-functional in v1.22+"),
    ("flocker", "deprecated in v1.22, non-functional in v1.25+"),
    ("storageos", "deprecated in v1.22, non-functional in v1.25+"),
    ("quobyte", "deprecated in v1.22, non-functional in v1.25+"),
    ("glusterfs", "deprecated in v1.25, non-functional in v1.26+"),
    (None, ""),  # generic ephemeral volumes' claim template comes here
    ("cephfs", "deprecated in v1.28, non-functional in v1.31+"),
    ("rbd", "deprecated in v1.28, non-functional in v1.31+"),
)
# Upstream names the StorageOS volume "storageOS" in its warning path (the Go field name).
_VOLUME_PATH_NAMES = {"storageos": "storageOS"}
_PROJECTED_ITEM_SOURCES = (("configMap", "configMap"), ("secret", "secrets"), ("downwardAPI", "downwardAPI"))
_PROJECTED_ITEM_KEYS = frozenset(k for k, _ in _PROJECTED_ITEM_SOURCES)
_VOLUME_KEYS_WARNED = frozenset(k for k, _ in _DEPRECATED_VOLUMES if k is not None) | {"ephemeral"}
_SECCOMP_POD = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER = "container.seccomp.security.alpha.kubernetes.io/"
_APPARMOR_CONTAINER = "container.apparmor.security.beta.kubernetes.io/"
_SECCOMP_FIELD_MSG = 'non-functional in v1.27+; use the "seccompProfile" field instead'
_APPARMOR_FIELD_MSG = 'deprecated since v1.30; use the "appArmorProfile" field instead'
_NULL_SELECTOR = "a null labelSelector results in matching no pod"
_BYTE_RESOURCES = (("limits", "memory"), ("requests", "memory"), ("limits", "ephemeral-storage"),
                   ("requests", "ephemeral-storage"))


def _fractional(path: str, value: Any) -> list[str]:
    """A byte quantity must be whole: upstream tests MilliValue() % 1000 (MilliValue rounds up)."""
    if value is None:
        return []
    v, binary = amount(value)
    if math.ceil(v * 1000) % 1000 == 0:
        return []
    return [f"{path}: fractional byte value {go_quote(render(v, binary))} is invalid, must be an integer"]


def pvc_spec_warnings(path: str, spec: dict[str, Any]) -> list[str]:
    """GetWarningsForPersistentVolumeClaimSpec."""
    res = d(spec.get("resources"))
    return (_fractional(f"{path}.resources.requests[storage]", d(res.get("requests")).get("storage"))
            + _fractional(f"{path}.resources.limits[storage]", d(res.get("limits")).get("storage")))


def _node_selector_term(path: str, term: dict[str, Any]) -> list[str]:
    """GetWarningsForNodeSelectorTerm (label values are not checked for pods)."""
    out = []
    for i, expr in enumerate(lst(term.get("matchExpressions"))):
        key = s(d(expr).get("key"))
        if key in DEPRECATED_NODE_LABELS:
            out.append(f"{path}.matchExpressions[{i}].key: {key} is {DEPRECATED_NODE_LABELS[key]}")
    return out


def _ports(containers: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = []
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for cpath, c in containers:
        for i, port in enumerate(lst(c.get("ports"))):
            port, ppath = d(port), f"{cpath}.ports[{i}]"
            host_ip, host_port = s(port.get("hostIP")), port.get("hostPort") or 0
            if host_ip and not host_port:
                out.append(f"{ppath}: hostIP set without hostPort: {{Name:{s(port.get('name'))} HostPort:{host_port} "
                           f"ContainerPort:{port.get('containerPort') or 0} Protocol:{s(port.get('protocol'))} "
                           f"HostIP:{host_ip}}}")
            key = f"{port.get('containerPort') or 0}/{s(port.get('protocol'))}"
            for other_path, other in seen.get(key, []):
                other_ip, other_port = s(other.get("hostIP")), other.get("hostPort") or 0
                if host_ip == other_ip and host_port == other_port:
                    out.append(f"{ppath}: duplicate port definition with {other_path}")
                elif not host_port or not other_port:
                    out.append(f"{ppath}: overlapping port definition with {other_path}")
                elif host_port == other_port and (not host_ip) != (not other_ip):
                    out.append(f"{ppath}: dangerously ambiguous port definition with {other_path}")
            seen.setdefault(key, []).append((ppath, port))
    return out


def _env(cpath: str, env: list[Any]) -> list[str]:
    """Duplicate env names that hide an earlier definition (dropped by apply's merge)."""
    out = []
    names: set[str] = set()
    for i, item in enumerate(env):
        item = d(item)
        name = s(item.get("name"))
        if name not in names:
            names.add(name)
            continue
        ref, value = f"$({name})", s(item.get("value"))
        if item.get("valueFrom") is not None or value == ref or ref not in value:
            out.append(f"{cpath}.env[{i}]: hides previous definition of {go_quote(name)}, which may be dropped when "
                       "using apply")
    return out


def _projected_paths(sources: list[Any], token_paths: set[str], other_paths: set[str]) -> None:
    """Adds the projected sources' ServiceAccountToken paths to `token_paths` and every path _volumes compares
    with them (items' and ClusterTrustBundles') to `other_paths`."""
    for src in sources:
        if not isinstance(src, dict):
            continue
        for key, source in src.items():
            if source is None:
                continue
            if key == "serviceAccountToken":
                token_paths.add(s(d(source).get("path")))
            elif key == "clusterTrustBundle":
                other_paths.add(s(d(source).get("path")))
            elif key in _PROJECTED_ITEM_KEYS and isinstance(source, dict):
                for item in lst(source.get("items")):
                    other_paths.add(s(d(item).get("path")))


def _volumes(spec_path: str, volumes: list[Any]) -> list[str]:
    out = []
    projected: list[tuple[int, list[Any]]] = []  # (volume index, its projected sources)
    token_paths: set[str] = set()
    other_paths: set[str] = set()
    for i, v in enumerate(volumes):
        v = d(v)
        if "projected" in v and (sources := lst(d(v["projected"]).get("sources"))):
            projected.append((i, sources))
            _projected_paths(sources, token_paths, other_paths)
        if v.keys().isdisjoint(_VOLUME_KEYS_WARNED):
            continue  # most volumes: no deprecated source, no ephemeral claim
        vpath = f"{spec_path}.volumes[{i}]"
        for key, msg in _DEPRECATED_VOLUMES:
            if key is None:
                template = d(v.get("ephemeral")).get("volumeClaimTemplate")
                if isinstance(template, dict):
                    out += pvc_spec_warnings(f"{vpath}.ephemeral.volumeClaimTemplate.spec", d(template.get("spec")))
            elif v.get(key) is not None:
                out.append(f"{vpath}.{_VOLUME_PATH_NAMES.get(key, key)}: {msg}")
    if token_paths.isdisjoint(other_paths):
        return out  # the usual case (the ServiceAccount plugin's volume among them): no path used twice
    # Walk the sources in upstream's order for the messages.
    for i, sources in projected:
        for src in sources:
            if not isinstance(src, dict):
                continue
            # Upstream's paths, including "secrets" and "ClusterTrustBundle" as it spells them.
            for key, label in _PROJECTED_ITEM_SOURCES:
                source = src.get(key)
                if not isinstance(source, dict):
                    continue
                for j, item in enumerate(lst(source.get("items"))):
                    item_path = s(d(item).get("path"))
                    if item_path in token_paths:
                        out.append(f"{spec_path}.volumes[{i}].projected.sources.{label}[{j}]: has duplicated path "
                                   f"with ServiceAccountToken {go_quote(item_path)}")
            bundle = src.get("clusterTrustBundle")
            if bundle is not None and s(d(bundle).get("path")) in token_paths:
                out.append(f"{spec_path}.volumes[{i}].projected.sources.ClusterTrustBundle: has duplicated path "
                           f"with ServiceAccountToken {go_quote(s(d(bundle).get('path')))}")
    return out


def _duplicates(path: str, items: list[Any], key: str, what: str) -> list[str]:
    out = []
    seen: set[str] = set()
    if len(items) > 1:
        for i, item in enumerate(items):
            v = s(d(item).get(key))
            if v in seen:
                out.append(f"{path}[{i}].{key}: duplicate {what} {go_quote(v)}")
            seen.add(v)
    return out


def _affinity_terms(path: str, terms: list[Any], weighted: bool) -> list[str]:
    sub = ".podAffinityTerm" if weighted else ""
    return [f"{path}[{i}]{sub}.labelSelector: {_NULL_SELECTOR}" for i, t in enumerate(terms)
            if (d(d(t).get("podAffinityTerm")) if weighted else d(t)).get("labelSelector") is None]


def spec_warnings(prefix: str, spec: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """warningsForPodSpecAndMeta; `prefix` is "" for a pod or the template's path plus ".".

    Each check is skipped when its field is unset or empty (it would find nothing), so a usual spec
    builds no path strings."""
    sp, ap = f"{prefix}spec", f"{prefix}metadata.annotations"
    annotations = d(meta.get("annotations"))
    out = []
    if spec.get("nodeSelector"):
        for k in sorted(d(spec.get("nodeSelector"))):
            if k in DEPRECATED_NODE_LABELS:
                out.append(f"{sp}.nodeSelector[{k}]: {DEPRECATED_NODE_LABELS[k]}")
    affinity = d(spec.get("affinity"))
    if affinity:
        node_affinity = d(affinity.get("nodeAffinity"))
        required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(required, dict):
            tpath = f"{sp}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            for i, term in enumerate(lst(required.get("nodeSelectorTerms"))):
                out += _node_selector_term(f"{tpath}[{i}]", d(term))
        ppath = f"{sp}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
        for i, term in enumerate(lst(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            out += _node_selector_term(f"{ppath}[{i}].preference", d(d(term).get("preference")))
    for i, c in enumerate(lst(spec.get("topologySpreadConstraints"))):
        c, cpath = d(c), f"{sp}.topologySpreadConstraints[{i}]"
        key = s(c.get("topologyKey"))
        if key in DEPRECATED_NODE_LABELS:
            out.append(f"{cpath}.topologyKey: {key} is {DEPRECATED_NODE_LABELS[key]}")
        if c.get("labelSelector") is None:
            out.append(f"{cpath}.labelSelector: {_NULL_SELECTOR}")
    if annotations:
        out += [f"{ap}[{key}]: {msg}" for key, msg in _DEPRECATED_ANNOTATIONS if key in annotations]
    if spec.get("volumes"):
        out += _volumes(sp, lst(spec.get("volumes")))
    if spec.get("hostAliases"):
        out += _duplicates(f"{sp}.hostAliases", lst(spec.get("hostAliases")), "ip", "ip")
    if spec.get("imagePullSecrets"):
        pull_secrets = lst(spec.get("imagePullSecrets"))
        out += _duplicates(f"{sp}.imagePullSecrets", pull_secrets, "name", "name")
        out += [f'{sp}.imagePullSecrets[{i}].name: invalid empty name ""' for i, ref in enumerate(pull_secrets)
                if not s(d(ref).get("name"))]
    if spec.get("overhead"):
        overhead = d(spec.get("overhead"))
        out += _fractional(f"{sp}.overhead[memory]", overhead.get("memory"))
        out += _fractional(f"{sp}.overhead[ephemeral-storage]", overhead.get("ephemeral-storage"))
    psc = d(spec.get("securityContext"))
    if annotations and psc.get("seccompProfile") is None and _SECCOMP_POD in annotations:
        out.append(f"{ap}[{_SECCOMP_POD}]: {_SECCOMP_FIELD_MSG}")
    with_ports: list[tuple[str, dict[str, Any]]] = []  # the containers _ports looks at, with their paths
    for ckey in CONTAINER_LISTS:
        for i, c in enumerate(lst(spec.get(ckey))):
            c = d(c)
            if annotations:
                sc = d(c.get("securityContext"))
                name = s(c.get("name"))
                if sc.get("seccompProfile") is None and _SECCOMP_CONTAINER + name in annotations:
                    out.append(f"{ap}[{_SECCOMP_CONTAINER}{name}]: {_SECCOMP_FIELD_MSG}")
                # A pod's AppArmor annotation is reported by the strategy's version-skew step, a template's here.
                if (prefix and psc.get("appArmorProfile") is None and sc.get("appArmorProfile") is None
                        and _APPARMOR_CONTAINER + name in annotations):
                    out.append(f"{ap}[{_APPARMOR_CONTAINER}{name}]: {_APPARMOR_FIELD_MSG}")
            if not (c.get("resources") or c.get("env") or c.get("ports")):
                continue
            cpath = f"{sp}.{ckey}[{i}]"
            res = d(c.get("resources"))
            for kind, resource in _BYTE_RESOURCES:
                value = d(res.get(kind)).get(resource)
                if value is not None:
                    out += _fractional(f"{cpath}.resources.{kind}[{resource}]", value)
            if c.get("env"):
                out += _env(cpath, lst(c.get("env")))
            if c.get("ports"):
                with_ports.append((cpath, c))
    if with_ports:
        out += _ports(with_ports)
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool) and grace < 0:
        out.append(f"{sp}.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be "
                   "treated as 1")
    if not affinity:
        return out
    for kind in ("podAffinity", "podAntiAffinity"):
        a = affinity.get(kind)
        if isinstance(a, dict):
            apath = f"{sp}.affinity.{kind}"
            out += _affinity_terms(f"{apath}.requiredDuringSchedulingIgnoredDuringExecution",
                                   lst(a.get("requiredDuringSchedulingIgnoredDuringExecution")), False)
            out += _affinity_terms(f"{apath}.preferredDuringSchedulingIgnoredDuringExecution",
                                   lst(a.get("preferredDuringSchedulingIgnoredDuringExecution")), True)
    return out


def template_warnings(path: str, template: dict[str, Any]) -> list[str]:
    """GetWarningsForPodTemplate at `path` (e.g. "spec.template")."""
    return spec_warnings(f"{path}.", d(template.get("spec")), d(template.get("metadata")))
