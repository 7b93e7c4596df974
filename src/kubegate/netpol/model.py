"""The objects the NetworkPolicy engine reasons about, parsed once from API objects.

Namespaces (labels), pods (namespace, labels, named container ports, IP when known) and
NetworkPolicies (defaulted as the API server defaults them, selectors compiled, CIDRs parsed).
Everything here is immutable and free of I/O; kubegate.netpol.engine evaluates it.
"""
from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from kubegate.api import defaults
from kubegate.api.resources import lookup
from kubegate.api.selectors import LabelSelector, SelectorError, label_selector_from_object
from kubegate.api.validation.networking import Network, parse_cidr

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
PROTOCOLS = ("TCP", "UDP", "SCTP")
NS_NAME_LABEL = "kubernetes.io/metadata.name"
_NETPOL = lookup("networking.k8s.io", "v1", "networkpolicies")


class ModelError(ValueError):
    """An object the engine cannot use (the message names it)."""


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...] = ()
    ip: IP | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        """The container port a policy's named port means on this pod (first match, as CNIs do)."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (maybe with its IP) or a bare IP outside the cluster."""

    pod: Pod | None = None
    ip: IP | None = None

    @staticmethod
    def of_pod(pod: Pod) -> Endpoint:
        return Endpoint(pod, pod.ip)

    def __str__(self) -> str:
        return self.pod.key if self.pod is not None else str(self.ip)


@dataclass(frozen=True)
class PortMatch:
    """One NetworkPolicyPort: protocol plus a number, a range, a name, or nothing (= every port)."""

    protocol: str
    port: int | None = None
    end_port: int | None = None
    name: str | None = None

    def matches(self, port: int, protocol: str, dst: Pod | None) -> bool:
        if protocol != self.protocol:
            return False
        if self.name is not None:
            # named ports resolve against the destination pod's containers; an IP has none
            return dst is not None and dst.named_port(self.name, protocol) == port
        if self.port is None:
            return True
        return self.port <= port <= (self.end_port if self.end_port is not None else self.port)

    def __str__(self) -> str:
        if self.name is not None:
            return f"{self.name}/{self.protocol}"
        if self.port is None:
            return f"all ports/{self.protocol}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Peer:
    """A NetworkPolicyPeer. Selector peers match pods only; ipBlock peers match IPs only.

    `namespaces` None means the policy's own namespace (a podSelector without namespaceSelector).
    """

    pods: LabelSelector | None = None
    namespaces: LabelSelector | None = None
    cidr: Network | None = None
    excepts: tuple[Network, ...] = ()

    def matches_ip(self, ip: IP | None) -> bool:
        if self.cidr is None or ip is None or ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip.version == e.version and ip in e for e in self.excepts)

    def describe(self, policy_ns: str) -> str:
        if self.cidr is not None:
            ex = f" except {', '.join(map(str, self.excepts))}" if self.excepts else ""
            return f"ipBlock {self.cidr}{ex}"
        pods = _sel(self.pods)
        if self.namespaces is None:
            return f"pods {pods} in namespace {policy_ns}"
        return f"pods {pods} in namespaces {_sel(self.namespaces)}"


def _sel(s: LabelSelector | None) -> str:
    if s is None or s.empty():
        return "(all)"
    return "[" + str(s) + "]"


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule. `peers`/`ports` None = the field was empty: everything matches."""

    index: int
    peers: tuple[Peer, ...] | None
    ports: tuple[PortMatch, ...] | None

    def matches_port(self, port: int, protocol: str, dst: Pod | None) -> bool:
        return self.ports is None or any(p.matches(port, protocol, dst) for p in self.ports)

    def describe(self, direction: str, policy_ns: str) -> str:
        word = "from" if direction == "ingress" else "to"
        peers = ("anywhere" if self.peers is None
                 else " or ".join(p.describe(policy_ns) for p in self.peers))
        ports = "all ports" if self.ports is None else "ports " + ", ".join(map(str, self.ports))
        return f"{word} {peers}; {ports}"


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    selector: LabelSelector
    ingress: tuple[Rule, ...] | None   # None: the policy does not isolate for ingress
    egress: tuple[Rule, ...] | None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointRef:
    """What a user names as one side of a connection: NAMESPACE/POD, or an IP address."""

    namespace: str = ""
    name: str = ""
    ip: IP | None = None

    @staticmethod
    def parse(value: str) -> EndpointRef:
        ns, slash, name = value.partition("/")
        if slash and ns and name and "/" not in name:
            return EndpointRef(ns, name)
        try:
            return EndpointRef(ip=ipaddress.ip_address(value))
        except ValueError:
            raise ModelError(f"want NAMESPACE/POD or an IP address, got {value!r}") from None

    def __str__(self) -> str:
        return str(self.ip) if self.ip is not None else f"{self.namespace}/{self.name}"


@dataclass
class Snapshot:
    """Everything the engine needs, keyed for lookup. Namespaces that pods or policies name but
    that were not given get only the automatic kubernetes.io/metadata.name label."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)

    def namespace(self, name: str) -> Namespace:
        ns = self.namespaces.get(name)
        return ns if ns is not None else Namespace(name, {NS_NAME_LABEL: name})

    def known_namespace(self, name: str) -> bool:
        return (name in self.namespaces or any(p.namespace == name for p in self.pods.values())
                or any(p.namespace == name for p in self.policies))

    def resolve(self, ref: EndpointRef) -> Endpoint:
        """The endpoint a reference names; ModelError when its namespace or pod does not exist."""
        if ref.ip is not None:
            return Endpoint(ip=ref.ip)
        pod = self.pods.get(f"{ref.namespace}/{ref.name}")
        if pod is not None:
            return Endpoint.of_pod(pod)
        if not self.known_namespace(ref.namespace):
            raise ModelError(f'namespace "{ref.namespace}" not found')
        raise ModelError(f'pod "{ref.name}" not found in namespace "{ref.namespace}"')

    def add(self, obj: Mapping[str, Any]) -> None:
        """Add one API object (Namespace, Pod, a workload's pod template, NetworkPolicy); other kinds
        are ignored. Raises ModelError for an object that cannot be used."""
        kind = obj.get("kind")
        if kind == "Namespace":
            ns = namespace_from_object(obj)
            self.namespaces[ns.name] = ns
        elif kind == "Pod":
            self._add_pod(pod_from_object(obj))
        elif kind in WORKLOAD_TEMPLATES:
            self._add_pod(pod_from_workload(obj))
        elif kind == "NetworkPolicy":
            self.policies.append(policy_from_object(obj))

    def _add_pod(self, pod: Pod) -> None:
        if pod.key in self.pods:
            raise ModelError(f"two pods named {pod.key}")
        self.pods[pod.key] = pod

    @staticmethod
    def of(objects: Iterable[Mapping[str, Any]]) -> Snapshot:
        snap = Snapshot()
        for o in objects:
            snap.add(o)
        return snap


# -- parsing API objects ------------------------------------------------------------------------

def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _labels(m: Mapping[str, Any]) -> dict[str, str]:
    labels = m.get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _name(obj: Mapping[str, Any]) -> str:
    name = _meta(obj).get("name")
    if not isinstance(name, str) or not name:
        raise ModelError(f"{obj.get('kind', 'object')} without metadata.name")
    return name


def namespace_from_object(obj: Mapping[str, Any]) -> Namespace:
    name = _name(obj)
    labels = _labels(_meta(obj))
    labels[NS_NAME_LABEL] = name  # set by the API server on every namespace since 1.21
    return Namespace(name, labels)


def parse_ip(value: str) -> IP:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ModelError(f"{value!r} is not an IP address") from None


def _pod(namespace: str, name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], ip: str | None) -> Pod:
    ports = []
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        for p in (c or {}).get("ports") or []:
            if p.get("name") and isinstance(p.get("containerPort"), int):
                ports.append(ContainerPort(p["name"], p["containerPort"], p.get("protocol") or "TCP"))
    return Pod(namespace, name, _labels(meta), tuple(ports), parse_ip(ip) if ip else None)


def pod_from_object(obj: Mapping[str, Any], default_namespace: str = "default") -> Pod:
    m = _meta(obj)
    status = obj.get("status") or {}
    return _pod(m.get("namespace") or default_namespace, _name(obj), m, obj.get("spec") or {},
                status.get("podIP") or None)


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


# Kinds whose pods come from a template: each stands for its pods under the workload's name.
WORKLOAD_TEMPLATES = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
                      "ReplicationController")


def pod_from_workload(obj: Mapping[str, Any], default_namespace: str = "default") -> Pod:
    m = _meta(obj)
    tmpl = _template(obj)
    return _pod(m.get("namespace") or default_namespace, _name(obj), _meta(tmpl), tmpl.get("spec") or {}, None)


def _selector(sel: Any, what: str) -> LabelSelector:
    try:
        return label_selector_from_object(sel if isinstance(sel, dict) else {})
    except SelectorError as e:
        raise ModelError(f"{what}: {e}") from None


def _cidr(value: Any, what: str) -> Network:
    net = parse_cidr(value if isinstance(value, str) else "")
    if net is None:
        raise ModelError(f"{what}: invalid CIDR {value!r}")
    return net


def _peer(p: Mapping[str, Any], what: str) -> Peer:
    block = p.get("ipBlock")
    if isinstance(block, dict):
        return Peer(cidr=_cidr(block.get("cidr"), what),
                    excepts=tuple(_cidr(e, what) for e in block.get("except") or []))
    pods = _selector(p.get("podSelector"), what)  # absent podSelector = all pods of the namespaces
    ns = p.get("namespaceSelector")
    return Peer(pods=pods, namespaces=None if ns is None else _selector(ns, what))


def _port(p: Mapping[str, Any]) -> PortMatch:
    proto = p.get("protocol") or "TCP"
    port = p.get("port")
    if isinstance(port, str):
        return PortMatch(proto, name=port)
    end = p.get("endPort")
    return PortMatch(proto, port if isinstance(port, int) else None, end if isinstance(end, int) else None)


def _rules(rules: Any, peers_key: str, what: str) -> tuple[Rule, ...]:
    out = []
    for i, r in enumerate(rules or []):
        r = r or {}
        peers = r.get(peers_key)
        ports = r.get("ports")
        out.append(Rule(i, tuple(_peer(p or {}, f"{what}[{i}].{peers_key}") for p in peers) if peers else None,
                        tuple(_port(p or {}) for p in ports) if ports else None))
    return tuple(out)


def policy_from_object(obj: Mapping[str, Any], default_namespace: str = "default") -> Policy:
    """A NetworkPolicy as stored: defaulted first (policyTypes, protocol), exactly as the server does."""
    obj = copy.deepcopy(dict(obj))
    assert _NETPOL is not None
    defaults.apply_defaults(_NETPOL, obj)
    m = _meta(obj)
    ns = m.get("namespace") or default_namespace
    name = _name(obj)
    spec = obj.get("spec") or {}
    types = spec.get("policyTypes") or []
    what = f"networkpolicy {ns}/{name}: spec"
    return Policy(ns, name, _selector(spec.get("podSelector"), f"{what}.podSelector"),
                  _rules(spec.get("ingress"), "from", f"{what}.ingress") if "Ingress" in types else None,
                  _rules(spec.get("egress"), "to", f"{what}.egress") if "Egress" in types else None)
