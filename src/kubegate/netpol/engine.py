"""The NetworkPolicy engine: pure, no I/O, upstream's semantics (reference §7.1).

- A pod is isolated for a direction only when some policy in its own namespace selects it
  with that policy type; a non-isolated direction allows everything.
- Allowed traffic is the union of the rules of every selecting policy; a rule matches when any
  of its peers matches (empty `from`/`to` = everyone) and any of its ports matches (empty = all).
- A connection needs the source's egress and the destination's ingress to allow it.
- Selector peers match pods only (namespaceSelector AND podSelector within one peer); ipBlock
  peers match IPs only: a bare IP, or a pod's IP when it is known.
- Named ports resolve against the destination pod's container ports.

`evaluate` answers one pair with its explanation; `allowed` is the same per-pair evaluation
without one; `matrix` answers every ordered pair at once by indexing pods per selector as
bitsets, and must agree with the per-pair answers cell for cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from kubegate.api.selectors import LabelSelector

from .matrix import Matrix
from .model import Endpoint, Peer, Pod, Policy, Rule, Snapshot

INGRESS, EGRESS = "ingress", "egress"


@dataclass(frozen=True)
class RuleRef:
    policy: str   # namespace/name
    direction: str
    index: int
    detail: str = field(default="", compare=False)  # the rule in words

    def __str__(self) -> str:
        return f"{self.policy} {self.direction}[{self.index}] ({self.detail})"


@dataclass(frozen=True)
class DirectionVerdict:
    """One direction of one connection: the egress of the source or the ingress of the destination."""

    direction: str
    pod: str | None                  # the pod whose policies apply; None for an IP outside the cluster
    selecting: tuple[str, ...]       # policies that select the pod for this direction (isolate it)
    allowed_by: tuple[RuleRef, ...]  # the rules among them that allow this connection

    @property
    def isolated(self) -> bool:
        return bool(self.selecting)

    @property
    def allowed(self) -> bool:
        return not self.selecting or bool(self.allowed_by)

    def explain(self) -> str:
        side = "egress from" if self.direction == EGRESS else "ingress to"
        if self.pod is None:
            return f"{side} an IP outside the cluster: no NetworkPolicy applies, allowed"
        if not self.selecting:
            return f"{side} {self.pod}: not isolated (no NetworkPolicy selects it for {self.direction}), allowed"
        head = f"{side} {self.pod}: isolated by {', '.join(self.selecting)}; "
        if self.allowed_by:
            return head + "allowed by " + ", ".join(map(str, self.allowed_by))
        return head + f"no {self.direction} rule allows it, denied"

    def to_json(self) -> dict[str, object]:
        return {"isolated": self.isolated, "policies": list(self.selecting),
                "allowedBy": [{"policy": r.policy, "rule": r.index} for r in self.allowed_by],
                "allowed": self.allowed}


@dataclass(frozen=True)
class Verdict:
    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str
    egress: DirectionVerdict
    ingress: DirectionVerdict

    @property
    def allowed(self) -> bool:
        return self.egress.allowed and self.ingress.allowed

    def explain(self) -> list[str]:
        word = "allowed" if self.allowed else "denied"
        return [f"{word}: {self.src} -> {self.dst} on {self.port}/{self.protocol}",
                "  " + self.egress.explain(), "  " + self.ingress.explain()]

    def to_json(self) -> dict[str, object]:
        return {"allowed": self.allowed, "from": str(self.src), "to": str(self.dst), "port": self.port,
                "protocol": self.protocol, "egress": self.egress.to_json(), "ingress": self.ingress.to_json(),
                "explanation": self.explain()}


class Engine:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snap = snapshot
        self._by_ns: dict[str, list[Policy]] = {}
        for p in snapshot.policies:
            self._by_ns.setdefault(p.namespace, []).append(p)

    # -- per pair ---------------------------------------------------------------------------------

    def _selecting(self, pod: Pod, direction: str) -> list[Policy]:
        return [p for p in self._by_ns.get(pod.namespace, ())
                if _rules_of(p, direction) is not None and p.selector.matches(pod.labels)]

    def _peer_matches(self, policy: Policy, peer: Peer, ep: Endpoint) -> bool:
        if peer.cidr is not None:
            return peer.matches_ip(ep.ip)
        pod = ep.pod
        if pod is None or peer.pods is None or not peer.pods.matches(pod.labels):
            return False
        if peer.namespaces is None:
            return pod.namespace == policy.namespace
        return peer.namespaces.matches(self.snap.namespace(pod.namespace).labels)

    def _rule_allows(self, policy: Policy, rule: Rule, other: Endpoint, port: int, protocol: str,
                     dst: Pod | None) -> bool:
        if not rule.matches_port(port, protocol, dst):
            return False
        return rule.peers is None or any(self._peer_matches(policy, peer, other) for peer in rule.peers)

    def _direction(self, direction: str, own: Endpoint, other: Endpoint, port: int, protocol: str,
                   dst: Pod | None, first_only: bool) -> DirectionVerdict:
        if own.pod is None:
            return DirectionVerdict(direction, None, (), ())
        selecting = self._selecting(own.pod, direction)
        allowed: list[RuleRef] = []
        for policy in selecting:
            for rule in _rules_of(policy, direction) or ():
                if self._rule_allows(policy, rule, other, port, protocol, dst):
                    allowed.append(RuleRef(policy.key, direction, rule.index,
                                           rule.describe(direction, policy.namespace) if not first_only else ""))
                    if first_only:
                        break
            if first_only and allowed:
                break
        return DirectionVerdict(direction, own.pod.key, tuple(p.key for p in selecting), tuple(allowed))

    def evaluate(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """The verdict for one connection, with every policy and rule that decided it."""
        return Verdict(src, dst, port, protocol,
                       self._direction(EGRESS, src, dst, port, protocol, dst.pod, False),
                       self._direction(INGRESS, dst, src, port, protocol, dst.pod, False))

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """The same evaluation without the explanation: stops at the first allowing rule."""
        return (self._direction(EGRESS, src, dst, port, protocol, dst.pod, True).allowed
                and self._direction(INGRESS, dst, src, port, protocol, dst.pod, True).allowed)

    # -- every pair at once ------------------------------------------------------------------------

    def matrix(self, pods: Iterable[Pod], port: int, protocol: str = "TCP") -> Matrix:
        return _Indexed(self, sorted(pods, key=lambda p: p.key)).matrix(port, protocol)


def _rules_of(policy: Policy, direction: str) -> tuple[Rule, ...] | None:
    return policy.ingress if direction == INGRESS else policy.egress


def _bits(mask: int) -> Iterable[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _Indexed:
    """Pods as bit positions; every selector, peer and port evaluated once against all pods."""

    def __init__(self, engine: Engine, pods: list[Pod]) -> None:
        self.engine = engine
        self.pods = pods
        self.all = (1 << len(pods)) - 1
        self.in_ns: dict[str, int] = {}
        for i, p in enumerate(pods):
            self.in_ns[p.namespace] = self.in_ns.get(p.namespace, 0) | 1 << i
        self._sel: dict[LabelSelector, int] = {}
        self._ns_sel: dict[LabelSelector, int] = {}
        self._peer: dict[tuple[str, Peer], int] = {}
        self._named: dict[tuple[str, str, int], int] = {}

    def selected(self, sel: LabelSelector) -> int:
        m = self._sel.get(sel)
        if m is None:
            m = 0
            for i, p in enumerate(self.pods):
                if sel.matches(p.labels):
                    m |= 1 << i
            self._sel[sel] = m
        return m

    def in_namespaces(self, sel: LabelSelector) -> int:
        m = self._ns_sel.get(sel)
        if m is None:
            m = 0
            for ns, pods in self.in_ns.items():
                if sel.matches(self.engine.snap.namespace(ns).labels):
                    m |= pods
            self._ns_sel[sel] = m
        return m

    def peer(self, policy: Policy, peer: Peer) -> int:
        key = (policy.namespace, peer)
        m = self._peer.get(key)
        if m is None:
            if peer.cidr is not None:
                m = 0
                for i, p in enumerate(self.pods):
                    if peer.matches_ip(p.ip):
                        m |= 1 << i
            elif peer.pods is None:
                m = 0
            else:
                scope = (self.in_ns.get(policy.namespace, 0) if peer.namespaces is None
                         else self.in_namespaces(peer.namespaces))
                m = self.selected(peer.pods) & scope
            self._peer[key] = m
        return m

    def peers(self, policy: Policy, rule: Rule) -> int:
        if rule.peers is None:
            return self.all
        m = 0
        for peer in rule.peers:
            m |= self.peer(policy, peer)
        return m

    def named(self, name: str, protocol: str, port: int) -> int:
        key = (name, protocol, port)
        m = self._named.get(key)
        if m is None:
            m = 0
            for i, p in enumerate(self.pods):
                if p.named_port(name, protocol) == port:
                    m |= 1 << i
            self._named[key] = m
        return m

    def destinations(self, rule: Rule, port: int, protocol: str) -> int:
        """The destination pods on which the rule's ports admit port/protocol."""
        if rule.ports is None:
            return self.all
        m = 0
        for pm in rule.ports:
            if pm.protocol != protocol:
                continue
            if pm.name is not None:
                m |= self.named(pm.name, protocol, port)
            elif pm.matches(port, protocol, None):
                return self.all
        return m

    def _selecting(self, direction: str) -> list[list[Policy]]:
        per_pod: list[list[Policy]] = [[] for _ in self.pods]
        for policy in self.engine.snap.policies:
            if _rules_of(policy, direction) is None:
                continue
            for i in _bits(self.selected(policy.selector) & self.in_ns.get(policy.namespace, 0)):
                per_pod[i].append(policy)
        return per_pod

    def matrix(self, port: int, protocol: str) -> Matrix:
        n = len(self.pods)
        # ingress_from[d]: the sources the ingress of d admits
        ingress_from = [self.all] * n
        for d, policies in enumerate(self._selecting(INGRESS)):
            if policies:
                m = 0
                for policy in policies:
                    for rule in policy.ingress or ():
                        if self.destinations(rule, port, protocol) >> d & 1:
                            m |= self.peers(policy, rule)
                ingress_from[d] = m
        # egress_to[s]: the destinations the egress of s admits
        egress_to = [self.all] * n
        for s, policies in enumerate(self._selecting(EGRESS)):
            if policies:
                m = 0
                for policy in policies:
                    for rule in policy.egress or ():
                        m |= self.peers(policy, rule) & self.destinations(rule, port, protocol)
                egress_to[s] = m
        # transpose ingress_from into rows per source; destinations sharing a mask go together
        groups: dict[int, int] = {}
        for d, m in enumerate(ingress_from):
            groups[m] = groups.get(m, 0) | 1 << d
        ingress_rows = []
        for s in range(n):
            row = 0
            for m, dsts in groups.items():
                if m >> s & 1:
                    row |= dsts
            ingress_rows.append(row)
        return Matrix(port, protocol, [p.key for p in self.pods], ingress_rows, egress_to)
