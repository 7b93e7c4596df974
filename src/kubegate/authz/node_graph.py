"""The Node authorizer's graph (upstream plugin/pkg/auth/authorizer/node/graph.go and
graph_populator.go): which API objects each node may reach through the pods bound to it.

Edges point toward nodes:

    pod -> node
    secret, configmap, pvc, serviceaccount -> pod
    pv -> pvc
    secret -> pv

An edge into a pod carries the pod's node ("destination"), so reachability is a lookup in a
per-vertex count of destinations, plus a walk along the few edges without one (secret -> PV ->
PVC, whose pod may not exist yet) for secrets and PVs. Deleting a vertex also deletes neighbours left
without edges, exactly as upstream, so the graph holds nothing no bound pod or bound PV needs.
Pure in-memory state: informers feed it, the authorizer reads it, nothing here does I/O."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from kubegate.api import podrefs

CONFIGMAP, NODE, POD, PVC, PV, SECRET, SERVICE_ACCOUNT = (
    "configmap", "node", "pod", "pvc", "pv", "secret", "serviceAccount")

Vertex = tuple[str, str, str]  # (type, namespace, name)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


class Graph:
    def __init__(self) -> None:
        self._out: dict[Vertex, dict[Vertex, Vertex | None]] = {}  # from -> {to: destination node}
        self._in: dict[Vertex, set[Vertex]] = {}
        self._destinations: dict[Vertex, Counter[Vertex]] = {}
        self._plain: dict[Vertex, set[Vertex]] = {}  # from -> targets of its edges without a destination

    # -- structure ----------------------------------------------------------------------------

    def __contains__(self, v: Vertex) -> bool:
        return v in self._out

    def __len__(self) -> int:
        return len(self._out)

    def _vertex(self, v: Vertex) -> Vertex:
        if v not in self._out:
            self._out[v] = {}
            self._in[v] = set()
            self._destinations[v] = Counter()
            self._plain[v] = set()
        return v

    def _degree(self, v: Vertex) -> int:
        return len(self._out[v]) + len(self._in[v])

    def _add_edge(self, frm: Vertex, to: Vertex, destination: Vertex | None) -> None:
        out = self._out[frm]
        if to in out:
            self._forget_edge(frm, to, out[to])
        out[to] = destination
        self._in[to].add(frm)
        if destination is None:
            self._plain[frm].add(to)
        else:
            self._destinations[frm][destination] += 1

    def _forget_edge(self, frm: Vertex, to: Vertex, destination: Vertex | None) -> None:
        if destination is None:
            self._plain[frm].discard(to)
            return
        counts = self._destinations[frm]
        counts[destination] -= 1
        if counts[destination] <= 0:
            del counts[destination]

    def _remove_vertex(self, v: Vertex) -> None:
        for to in self._out.pop(v):
            self._in[to].discard(v)
        for frm in self._in.pop(v):
            self._forget_edge(frm, v, self._out[frm].pop(v))
        del self._destinations[v]
        del self._plain[v]

    def _delete_vertex(self, v: Vertex) -> None:
        """Remove `v` and every neighbour whose only edge was to or from `v`."""
        if v not in self._out:
            return
        orphans = [n for n in (*self._out[v], *self._in[v]) if self._degree(n) == 1]
        self._remove_vertex(v)
        for n in orphans:
            self._remove_vertex(n)

    # -- population (graph_populator.go) ------------------------------------------------------

    def add_pod(self, pod: Mapping[str, Any]) -> None:
        """(Re)build a bound pod's edges; the references of a bound pod are immutable."""
        m = _meta(pod)
        ns, name = str(m.get("namespace") or ""), str(m.get("name") or "")
        self._delete_vertex((POD, ns, name))
        pod_v = self._vertex((POD, ns, name))
        node_v = self._vertex((NODE, "", podrefs.node_name(pod)))
        self._add_edge(pod_v, node_v, node_v)
        # A mirror pod grants nothing: a node must never gain access by creating a pod.
        if podrefs.is_mirror_pod(pod):
            return
        refs: list[Vertex] = []
        sa = podrefs.service_account_name(pod)
        if sa:
            refs.append((SERVICE_ACCOUNT, ns, sa))
        refs += [(SECRET, ns, s) for s in podrefs.pod_secret_names(pod)]
        refs += [(CONFIGMAP, ns, c) for c in podrefs.pod_configmap_names(pod)]
        refs += [(PVC, ns, c) for c in podrefs.pod_pvc_names(pod)]
        for ref in refs:
            self._add_edge(self._vertex(ref), pod_v, node_v)

    def delete_pod(self, namespace: str, name: str) -> None:
        self._delete_vertex((POD, namespace, name))

    def add_pv(self, pv: Mapping[str, Any]) -> None:
        name = str(_meta(pv).get("name") or "")
        self._delete_vertex((PV, "", name))
        spec = pv.get("spec")
        claim = spec.get("claimRef") if isinstance(spec, Mapping) else None
        if not isinstance(claim, Mapping):
            return
        pv_v = self._vertex((PV, "", name))
        # The claim's pod (and so its node) may not exist yet: these edges carry no destination.
        self._add_edge(pv_v, self._vertex((PVC, str(claim.get("namespace") or ""), str(claim.get("name") or ""))),
                       None)
        for ns, secret, kubelet_visible in podrefs.pv_secret_refs(pv):
            if kubelet_visible:
                self._add_edge(self._vertex((SECRET, ns, secret)), pv_v, None)

    def delete_pv(self, name: str) -> None:
        self._delete_vertex((PV, "", name))

    def pod_event(self, typ: str, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """An informer handler for pods: only bound pods are in the graph."""
        if typ == "DELETED":
            gone = obj or old
            if gone is not None and podrefs.node_name(gone):
                m = _meta(gone)
                self.delete_pod(str(m.get("namespace") or ""), str(m.get("name") or ""))
            return
        if obj is None or not podrefs.node_name(obj):
            return
        if (old is not None and podrefs.node_name(old) == podrefs.node_name(obj)
                and _meta(old).get("uid") == _meta(obj).get("uid")):
            return  # same node, same pod: nothing a pod's edges depend on can have changed
        self.add_pod(obj)

    def pv_event(self, typ: str, obj: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        if typ == "DELETED":
            gone = obj or old
            if gone is not None:
                self.delete_pv(str(_meta(gone).get("name") or ""))
        elif obj is not None:
            self.add_pv(obj)

    # -- queries ------------------------------------------------------------------------------

    def has_path(self, node: str, start: Vertex) -> bool:
        """Whether a path leads from `start` to the node named `node` without passing through a pod
        bound elsewhere (upstream hasPathFrom)."""
        node_v: Vertex = (NODE, "", node)
        if node_v not in self._out or start not in self._out:
            return False
        # Edges carrying a destination either reach this node (counted) or a pod elsewhere (a dead
        # end), so only edges without one (secret -> pv -> pvc) need walking.
        seen = {start}
        stack = [start]
        while stack:
            v = stack.pop()
            if self._destinations[v][node_v] > 0:
                return True
            for to in self._plain[v]:
                if to not in seen:
                    seen.add(to)
                    stack.append(to)
        return False
