"""The NetworkPolicy engine against cyclonus's recorded answers, the network-policy recipes, and one
table test per rule of upstream's semantics. Every verdict is also checked against the indexed
matrix, so the per-pair path and the matrix can never drift apart."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubegate.netpol import manifests
from kubegate.netpol.engine import Engine
from kubegate.netpol.matrix import grid
from kubegate.netpol.model import EndpointRef, ModelError, Snapshot
from tests.fixtures import FIXTURES

CYCLONUS = FIXTURES / "networkpolicy" / "cyclonus-examples"
RECIPES = FIXTURES / "networkpolicy" / "recipes"


# -- building blocks ----------------------------------------------------------------------------

def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(key: str, labels: dict[str, str] | None = None, ports: list[tuple[str, int, str]] | None = None,
        ip: str | None = None) -> dict[str, Any]:
    namespace, name = key.split("/")
    obj: dict[str, Any] = {"kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
                           "spec": {"containers": [{"name": "c", "ports": [
                               {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports or []]}]}}
    if ip:
        obj["status"] = {"podIP": ip}
    return obj


def np(key: str, spec: dict[str, Any]) -> dict[str, Any]:
    namespace, name = key.split("/")
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def allowed(objs: list[dict[str, Any]], src: str, dst: str, port: int, protocol: str = "TCP") -> bool:
    snap = Snapshot.of(objs)
    engine = Engine(snap)
    a, b = snap.resolve(EndpointRef.parse(src)), snap.resolve(EndpointRef.parse(dst))
    verdict = engine.evaluate(a, b, port, protocol)
    assert engine.allowed(a, b, port, protocol) == verdict.allowed
    if a.pod is not None and b.pod is not None:
        m = engine.matrix(snap.pods.values(), port, protocol)
        assert m.allowed(m.pods.index(a.pod.key), m.pods.index(b.pod.key)) == verdict.allowed
    return verdict.allowed


# -- cyclonus: recorded probe tables and traffic verdicts ------------------------------------------

def _probe_snapshot() -> Snapshot:
    probe = json.loads((CYCLONUS / "examples" / "probe.json").read_text())
    objs = [ns(n, **labels) for n, labels in probe["Resources"]["Namespaces"].items()]
    for p in probe["Resources"]["Pods"]:
        objs.append(pod(f"{p['Namespace']}/{p['Name']}", p["Labels"],
                        [(c["PortName"], c["Port"], c["Protocol"].upper()) for c in p["Containers"]], p["IP"]))
    objs += _simple_example()
    return Snapshot.of(objs)


def _simple_example() -> list[dict[str, Any]]:
    return [yaml.safe_load(f.read_text()) for f in sorted((CYCLONUS / "networkpolicies" / "simple-example").glob("*"))]


def _recorded_blocks() -> list[str]:
    """The Ingress/Egress/Combined text of each probe in analyze-probe.txt, in order."""
    text = (CYCLONUS / "examples" / "cyclonus-output" / "analyze-probe.txt").read_text()
    return [b.strip("\n") for b in text.removeprefix("probe:\n").split("\n\n\n\n") if b.strip()]


@pytest.mark.parametrize("index,port", [(0, 80), (1, 81)])
def test_cyclonus_probe_tables_match_byte_for_byte(index: int, port: int) -> None:
    snap = _probe_snapshot()
    m = Engine(snap).matrix(snap.pods.values(), port)
    assert m.table().strip("\n") == _recorded_blocks()[index]


def test_cyclonus_empty_probe_table() -> None:
    # the last recorded probe has no pods at all: tablewriter's empty grid
    assert grid([], []) == "+--+\n|  |\n+--+\n+--+"
    assert _recorded_blocks()[-1].split("\n\n")[0] == "Ingress:\n" + grid([], [])


def test_cyclonus_traffic_verdicts() -> None:
    flows = json.loads((CYCLONUS / "examples" / "traffic.json").read_text())
    recorded = re.findall(r"IS ALLOWED\? \|\s+(TRUE|FALSE)", (CYCLONUS / "examples" / "cyclonus-output" /
                                                            "analyze-query-traffic.txt").read_text())
    assert len(recorded) == len(flows) == 4
    for i, (flow, want) in enumerate(zip(flows, recorded)):
        objs = _simple_example()
        ends = []
        for side in ("Source", "Destination"):
            end = flow[side]
            internal = end.get("Internal")
            if internal is None:
                ends.append(end["IP"])
                continue
            objs.append(ns(internal["Namespace"], **internal["NamespaceLabels"]))
            key = f"{internal['Namespace']}/flow{i}-{side.lower()}"
            objs.append(pod(key, internal["PodLabels"], ip=end.get("IP")))
            ends.append(key)
        assert allowed(objs, ends[0], ends[1], flow["ResolvedPort"], flow["Protocol"]) == (want == "TRUE"), i


def test_every_cyclonus_policy_file_loads_and_validates() -> None:
    snap = manifests.load([str(CYCLONUS / "networkpolicies")])
    assert len(snap.policies) == 14  # 11 single-policy files + the 3 of yaml-list.yaml
    listed = manifests.load([str(CYCLONUS / "networkpolicies" / "yaml-syntax" / "yaml-list.yaml")])
    assert [p.namespace for p in listed.policies] == ["ns-y"] * 3


def test_cyclonus_port_range_feature() -> None:
    objs = [*Snapshot_objs(CYCLONUS / "networkpolicies" / "features" / "portrange1.yaml"),
            pod("x/a", {"pod": "a"}), pod("y/a", {"pod": "a"}), pod("y/b", {"pod": "b"}), ns("x", ns="x"),
            ns("y", ns="y")]
    assert allowed(objs, "x/a", "y/a", 80)
    assert allowed(objs, "x/a", "y/a", 103)
    assert not allowed(objs, "x/a", "y/a", 104)
    assert not allowed(objs, "x/a", "y/b", 80)
    assert allowed(objs, "x/a", "8.8.8.8", 53, "UDP")
    assert not allowed(objs, "x/a", "8.8.8.8", 53, "TCP")


def Snapshot_objs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# -- the recipes (ahmetb/kubernetes-network-policy-recipes) ----------------------------------------

def recipe(name: str, index: int = 0) -> dict[str, Any]:
    """The index-th NetworkPolicy YAML block of a recipe."""
    text = (RECIPES / name).read_text()
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        try:
            doc = yaml.safe_load(block)
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "NetworkPolicy":
            found.append(doc)
    return found[index]


WEB = pod("default/web", {"app": "web"})


def test_recipe_01_deny_all_to_an_application() -> None:
    assert allowed([WEB, pod("default/test")], "default/test", "default/web", 80)  # before the policy
    objs = [WEB, pod("default/test"), recipe("01-deny-all-traffic-to-an-application.md")]
    assert not allowed(objs, "default/test", "default/web", 80)


def test_recipe_02_limit_traffic_to_an_application() -> None:
    objs = [pod("default/apiserver", {"app": "bookstore", "role": "api"}), pod("default/test"),
            pod("default/frontend", {"app": "bookstore", "role": "frontend"}),
            recipe("02-limit-traffic-to-an-application.md")]
    assert not allowed(objs, "default/test", "default/apiserver", 80)
    assert allowed(objs, "default/frontend", "default/apiserver", 80)


def test_recipe_02a_allow_all_voids_deny_all() -> None:
    objs = [WEB, pod("default/test"), recipe("02a-allow-all-traffic-to-an-application.md"),
            recipe("01-deny-all-traffic-to-an-application.md")]
    assert allowed(objs, "default/test", "default/web", 80)


def test_recipe_03_default_deny_in_the_namespace() -> None:
    objs = [WEB, pod("default/test"), pod("other/test"), recipe("03-deny-all-non-whitelisted-traffic-in-the-namespace.md")]
    assert not allowed(objs, "default/test", "default/web", 80)
    assert not allowed(objs, "other/test", "default/test", 80)
    assert allowed(objs, "default/test", "other/test", 80)  # ingress only: egress is untouched


def test_recipe_04_deny_from_other_namespaces() -> None:
    objs = [WEB, pod("default/test"), pod("foo/test"), recipe("04-deny-traffic-from-other-namespaces.md")]
    assert not allowed(objs, "foo/test", "default/web", 80)
    assert allowed(objs, "default/test", "default/web", 80)


def test_recipe_05_allow_from_all_namespaces() -> None:
    objs = [WEB, pod("secondary/test"), pod("bar/test"), recipe("05-allow-traffic-from-all-namespaces.md"),
            recipe("01-deny-all-traffic-to-an-application.md")]
    assert allowed(objs, "secondary/test", "default/web", 80)
    assert allowed(objs, "bar/test", "default/web", 80)
    assert not allowed(objs, "203.0.113.9", "default/web", 80)  # namespaceSelector {} is pods only


def test_recipe_06_allow_from_a_namespace() -> None:
    objs = [WEB, ns("dev", purpose="testing"), ns("prod", purpose="production"), pod("dev/test"), pod("prod/test"),
            recipe("06-allow-traffic-from-a-namespace.md")]
    assert not allowed(objs, "dev/test", "default/web", 80)
    assert allowed(objs, "prod/test", "default/web", 80)


def test_recipe_07_namespace_and_pod_selector_is_and() -> None:
    objs = [WEB, ns("other", team="operations"), pod("default/test"), pod("default/mon", {"type": "monitoring"}),
            pod("other/test"), pod("other/mon", {"type": "monitoring"}),
            recipe("07-allow-traffic-from-some-pods-in-another-namespace.md")]
    assert not allowed(objs, "default/test", "default/web", 80)
    assert not allowed(objs, "default/mon", "default/web", 80)
    assert not allowed(objs, "other/test", "default/web", 80)
    assert allowed(objs, "other/mon", "default/web", 80)


def test_recipe_08_allow_external_traffic() -> None:
    objs = [WEB, recipe("08-allow-external-traffic.md"),
            recipe("03-deny-all-non-whitelisted-traffic-in-the-namespace.md")]
    assert allowed(objs, "203.0.113.9", "default/web", 80)
    assert allowed(objs, "203.0.113.9", "default/web", 443)


def test_recipe_09_allow_only_a_port() -> None:
    objs = [pod("default/apiserver", {"app": "apiserver"}), pod("default/test"),
            pod("default/mon", {"role": "monitoring"}), recipe("09-allow-traffic-only-to-a-port.md")]
    assert not allowed(objs, "default/test", "default/apiserver", 8000)
    assert not allowed(objs, "default/test", "default/apiserver", 5000)
    assert not allowed(objs, "default/mon", "default/apiserver", 8000)
    assert allowed(objs, "default/mon", "default/apiserver", 5000)
    # the recipe's named-port form: `port: api-port` on a pod declaring api-port = 5000
    named = recipe("09-allow-traffic-only-to-a-port.md")
    named["spec"]["ingress"][0]["ports"] = [{"port": "api-port"}]
    objs = [pod("default/apiserver", {"app": "apiserver"}, [("api-port", 5000, "TCP")]),
            pod("default/mon", {"role": "monitoring"}), named]
    assert allowed(objs, "default/mon", "default/apiserver", 5000)
    assert not allowed(objs, "default/mon", "default/apiserver", 8000)


def test_recipe_10_multiple_selectors_are_or() -> None:
    objs = [pod("default/db", {"app": "bookstore", "role": "db"}), pod("default/catalog", {"app": "inventory", "role": "web"}),
            pod("default/other", {"app": "other"}), recipe("10-allowing-traffic-with-multiple-selectors.md")]
    assert allowed(objs, "default/catalog", "default/db", 6379)
    assert not allowed(objs, "default/other", "default/db", 6379)


DNS = [ns("kube-system"), pod("kube-system/coredns", {"k8s-app": "kube-dns"})]


def test_recipe_11_deny_egress_from_an_application() -> None:
    base = [WEB, pod("default/test", {"app": "foo"}), *DNS]
    deny = [*base, recipe("11-deny-egress-traffic-from-an-application.md", 0)]
    assert not allowed(deny, "default/test", "default/web", 80)
    assert not allowed(deny, "default/test", "kube-system/coredns", 53, "UDP")  # "bad address": no DNS
    dns = [*base, recipe("11-deny-egress-traffic-from-an-application.md", 1)]
    assert allowed(dns, "default/test", "kube-system/coredns", 53, "UDP")
    assert allowed(dns, "default/test", "kube-system/coredns", 53, "TCP")
    assert not allowed(dns, "default/test", "default/web", 80)
    assert not allowed(dns, "default/test", "93.184.216.34", 80)


def test_recipe_12_default_deny_egress_in_the_namespace() -> None:
    objs = [WEB, pod("default/test"), pod("other/test"),
            recipe("12-deny-all-non-whitelisted-traffic-from-the-namespace.md")]
    assert not allowed(objs, "default/test", "default/web", 80)
    assert not allowed(objs, "default/test", "93.184.216.34", 80)
    assert allowed(objs, "other/test", "default/web", 80)


def test_recipe_14_deny_external_egress() -> None:
    objs = [WEB, pod("default/test", {"app": "foo"}), *DNS, recipe("14-deny-external-egress-traffic.md")]
    assert not allowed(objs, "default/test", "93.184.216.34", 80)
    assert allowed(objs, "default/test", "kube-system/coredns", 53, "UDP")
    # The recipe's transcript shows app=foo reaching `web`, but its policy allows egress only to
    # kube-dns: by upstream's rules (an egress-isolated pod reaches only what a rule lists) this is
    # denied; the transcript reflects the recipe author's cluster, not NetworkPolicy semantics.
    assert not allowed(objs, "default/test", "default/web", 80)


# -- one table test per rule ---------------------------------------------------------------------

ALL = {"podSelector": {}}
X, Y = ns("x", team="a"), ns("y", team="b")


def test_empty_pod_selector_selects_every_pod_of_its_namespace_only() -> None:
    objs = [X, Y, pod("x/a"), pod("x/b", {"any": "thing"}), pod("y/a"), np("x/deny", {**ALL, "ingress": []})]
    assert not allowed(objs, "y/a", "x/a", 80)
    assert not allowed(objs, "y/a", "x/b", 80)
    assert allowed(objs, "x/a", "y/a", 80)  # a policy never selects pods of another namespace


@pytest.mark.parametrize("rules,external,pod_ok", [
    ([], False, False),                                   # ingress: [] denies everything
    ([{}], True, True),                                   # ingress: [{}] allows everything
    ([{"ports": [{"port": 80}]}], True, True),            # no `from`: every source, incl. outside IPs
    ([{"from": [{"namespaceSelector": {}}]}], False, True),  # every pod, but no IP outside
    ([{"from": [{"podSelector": {}}]}], False, False),    # every pod of the policy's namespace only
])
def test_empty_from_and_empty_rules(rules: list[dict[str, Any]], external: bool, pod_ok: bool) -> None:
    objs = [X, Y, pod("x/a"), pod("y/b"), np("x/p", {**ALL, "ingress": rules})]
    assert allowed(objs, "198.51.100.1", "x/a", 80) == external
    assert allowed(objs, "y/b", "x/a", 80) == pod_ok


def test_omitted_ingress_with_ingress_type_denies() -> None:
    objs = [X, pod("x/a"), pod("x/b"), np("x/p", {**ALL, "policyTypes": ["Ingress"]})]
    assert not allowed(objs, "x/b", "x/a", 80)


def test_and_within_one_peer_or_across_peers() -> None:
    objs = [X, Y, pod("x/web", {"app": "web"}), pod("y/mon", {"role": "mon"}), pod("y/other"),
            pod("x/mon", {"role": "mon"})]
    both = {"namespaceSelector": {"matchLabels": {"team": "b"}}, "podSelector": {"matchLabels": {"role": "mon"}}}
    one_peer = np("x/and", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [both]}]})
    assert allowed([*objs, one_peer], "y/mon", "x/web", 80)
    assert not allowed([*objs, one_peer], "y/other", "x/web", 80)
    assert not allowed([*objs, one_peer], "x/mon", "x/web", 80)
    two_peers = np("x/or", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [
        {"namespaceSelector": both["namespaceSelector"]}, {"podSelector": both["podSelector"]}]}]})
    assert allowed([*objs, two_peers], "y/other", "x/web", 80)  # any pod of team=b
    assert allowed([*objs, two_peers], "x/mon", "x/web", 80)    # role=mon in the policy's namespace


def test_union_of_policies_is_additive() -> None:
    objs = [X, pod("x/a", {"app": "a"}), pod("x/b", {"app": "b"}), pod("x/c", {"app": "c"}),
            np("x/deny", {**ALL, "ingress": []}),
            np("x/from-b", {"podSelector": {"matchLabels": {"app": "a"}},
                            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]})]
    assert allowed(objs, "x/b", "x/a", 80)
    assert not allowed(objs, "x/c", "x/a", 80)


def test_except_blocks() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.5.0/24"]}}
    objs = [X, pod("x/a"), np("x/p", {**ALL, "ingress": [{"from": [block]}]})]
    assert allowed(objs, "10.0.4.1", "x/a", 80)
    assert not allowed(objs, "10.0.5.1", "x/a", 80)
    assert not allowed(objs, "10.1.0.1", "x/a", 80)
    assert not allowed(objs, "2001:db8::1", "x/a", 80)
    # an IP in except is only excluded by that peer: another policy may still allow it
    other = np("x/q", {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.5.0/24"}}]}]})
    assert allowed([*objs, other], "10.0.5.1", "x/a", 80)


def test_ipblock_matches_ips_not_labels() -> None:
    block = np("x/p", {**ALL, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]})
    objs = [X, Y, pod("x/a"), pod("y/with-ip", ip="10.1.2.3"), pod("y/no-ip"), pod("y/out", ip="192.168.0.1"), block]
    assert allowed(objs, "y/with-ip", "x/a", 80)   # a pod matches an ipBlock only through its IP
    assert not allowed(objs, "y/no-ip", "x/a", 80)
    assert not allowed(objs, "y/out", "x/a", 80)


def test_named_ports_resolve_per_destination_pod() -> None:
    objs = [X, pod("x/one", {"app": "s"}, [("http", 8080, "TCP")]), pod("x/two", {"app": "s"}, [("http", 9090, "TCP")]),
            pod("x/udp", {"app": "s"}, [("http", 8080, "UDP")]), pod("x/client"),
            np("x/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"ports": [{"port": "http"}]}]})]
    assert allowed(objs, "x/client", "x/one", 8080)
    assert not allowed(objs, "x/client", "x/one", 9090)
    assert allowed(objs, "x/client", "x/two", 9090)
    assert not allowed(objs, "x/client", "x/two", 8080)
    assert not allowed(objs, "x/client", "x/udp", 8080)   # the pod declares the name for UDP only
    assert not allowed(objs, "x/client", "x/udp", 8080, "UDP")  # and the policy's port defaults to TCP
    udp = np("x/udp", {"podSelector": {"matchLabels": {"app": "s"}},
                       "ingress": [{"ports": [{"port": "http", "protocol": "UDP"}]}]})
    assert allowed([*objs, udp], "x/client", "x/udp", 8080, "UDP")


def test_egress_named_port_resolves_on_the_destination() -> None:
    objs = [X, pod("x/src", {"app": "src"}), pod("x/dst", ports=[("db", 5432, "TCP")]),
            np("x/p", {"podSelector": {"matchLabels": {"app": "src"}}, "policyTypes": ["Egress"],
                       "egress": [{"ports": [{"port": "db"}]}]})]
    assert allowed(objs, "x/src", "x/dst", 5432)
    assert not allowed(objs, "x/src", "203.0.113.1", 5432)  # an IP has no named ports


def test_udp_only_policy_denies_tcp() -> None:
    objs = [X, pod("x/a"), pod("x/b"), np("x/p", {**ALL, "ingress": [{"ports": [{"protocol": "UDP", "port": 53}]}]})]
    assert allowed(objs, "x/b", "x/a", 53, "UDP")
    assert not allowed(objs, "x/b", "x/a", 53, "TCP")
    assert not allowed(objs, "x/b", "x/a", 53, "SCTP")


def test_end_port_range() -> None:
    objs = [X, pod("x/a"), pod("x/b"), np("x/p", {**ALL, "ingress": [{"ports": [{"port": 1000, "endPort": 1010}]}]})]
    assert [allowed(objs, "x/b", "x/a", p) for p in (999, 1000, 1010, 1011)] == [False, True, True, False]


def test_egress_to_an_ip_block() -> None:
    objs = [X, pod("x/a"), pod("x/b", ip="172.16.0.9"),
            np("x/p", {**ALL, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "172.16.0.0/12"}}]}]})]
    assert allowed(objs, "x/a", "172.20.1.1", 443)
    assert not allowed(objs, "x/a", "8.8.8.8", 443)
    assert allowed(objs, "x/a", "x/b", 443)


def test_default_deny_in_one_direction_only() -> None:
    ingress_deny = [X, pod("x/a"), pod("x/b"), np("x/p", {**ALL, "policyTypes": ["Ingress"]})]
    assert not allowed(ingress_deny, "x/a", "x/b", 80)
    assert allowed(ingress_deny, "x/a", "1.1.1.1", 80)
    egress_deny = [X, pod("x/a"), np("x/p", {**ALL, "policyTypes": ["Egress"]})]
    assert not allowed(egress_deny, "x/a", "1.1.1.1", 80)
    assert allowed(egress_deny, "1.1.1.1", "x/a", 80)


def test_policy_types_default_includes_egress_when_egress_rules_exist() -> None:
    # no policyTypes + egress rules -> [Ingress, Egress]: the pod also becomes ingress-isolated
    objs = [X, pod("x/a"), pod("x/b"), np("x/p", {**ALL, "egress": [{}]})]
    assert allowed(objs, "x/a", "x/b", 80) is False
    assert allowed(objs, "x/a", "9.9.9.9", 80)


def test_both_sides_must_allow() -> None:
    objs = [X, Y, pod("x/a", {"app": "a"}), pod("y/b", {"app": "b"}),
            np("x/out", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}]}),
            np("y/in", {"podSelector": {"matchLabels": {"app": "b"}}, "ingress": [{"ports": [{"port": 443}]}]})]
    assert allowed(objs, "x/a", "y/b", 443)
    assert not allowed(objs, "x/a", "y/b", 80)  # egress allows, ingress does not


def test_automatic_namespace_name_label() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}
    objs = [X, pod("x/a"), pod("y/b"), pod("z/c"), np("x/p", {**ALL, "ingress": [{"from": [peer]}]})]
    assert allowed(objs, "y/b", "x/a", 80)
    assert not allowed(objs, "z/c", "x/a", 80)


def test_explanation_names_policies_and_rules() -> None:
    objs = [X, pod("x/a", {"app": "a"}), pod("x/b"), np("x/deny", {**ALL, "ingress": []}),
            np("x/web", {"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 80}]}]})]
    snap = Snapshot.of(objs)
    v = Engine(snap).evaluate(snap.resolve(EndpointRef.parse("x/b")), snap.resolve(EndpointRef.parse("x/a")), 80)
    assert v.allowed and v.ingress.selecting == ("x/deny", "x/web") and not v.egress.isolated
    assert v.explain() == [
        "allowed: x/b -> x/a on 80/TCP",
        "  egress from x/b: not isolated (no NetworkPolicy selects it for egress), allowed",
        "  ingress to x/a: isolated by x/deny, x/web; allowed by x/web ingress[0] (from anywhere; ports 80/TCP)"]
    v = Engine(snap).evaluate(snap.resolve(EndpointRef.parse("x/b")), snap.resolve(EndpointRef.parse("x/a")), 81)
    assert v.explain()[2] == "  ingress to x/a: isolated by x/deny, x/web; no ingress rule allows it, denied"
    assert v.to_json()["ingress"] == {"isolated": True, "policies": ["x/deny", "x/web"], "allowedBy": [],
                                      "allowed": False}


def test_unknown_pods_and_namespaces() -> None:
    snap = Snapshot.of([X, pod("x/a")])
    with pytest.raises(ModelError, match='pod "nope" not found in namespace "x"'):
        snap.resolve(EndpointRef.parse("x/nope"))
    with pytest.raises(ModelError, match='namespace "q" not found'):
        snap.resolve(EndpointRef.parse("q/a"))
    with pytest.raises(ModelError, match="want NAMESPACE/POD or an IP address, got 'nonsense'"):
        EndpointRef.parse("nonsense")


# -- the matrix ------------------------------------------------------------------------------------

def test_matrix_json_format() -> None:
    snap = Snapshot.of([X, pod("x/b"), pod("x/a"), np("x/p", {"podSelector": {"matchLabels": {"app": "none"}}})])
    doc = Engine(snap).matrix(snap.pods.values(), 80).to_json()
    assert json.dumps(doc) == ('{"port": 80, "protocol": "TCP", "pods": ["x/a", "x/b"], "allowed": '
                               '{"x/a": {"x/a": true, "x/b": true}, "x/b": {"x/a": true, "x/b": true}}}')


def _random_cluster(rnd: random.Random) -> list[dict[str, Any]]:
    apps, nss = ("a", "b", "c"), ("x", "y", "z")
    objs: list[dict[str, Any]] = [ns(n, team=rnd.choice("pq")) for n in nss]
    for i in range(18):
        objs.append(pod(f"{rnd.choice(nss)}/p{i}", {"app": rnd.choice(apps)},
                        [("http", rnd.choice((80, 81)), rnd.choice(("TCP", "UDP")))],
                        rnd.choice((None, f"10.0.0.{i}"))))

    def peer() -> dict[str, Any]:
        return rnd.choice([{"podSelector": {"matchLabels": {"app": rnd.choice(apps)}}},
                           {"namespaceSelector": {"matchLabels": {"team": rnd.choice("pq")}}},
                           {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": rnd.choice(apps)}}},
                           {"ipBlock": {"cidr": "10.0.0.0/29", "except": ["10.0.0.4/30"]}}])

    def rule(key: str) -> dict[str, Any]:
        r: dict[str, Any] = {}
        if rnd.random() < 0.8:
            r[key] = [peer() for _ in range(rnd.randrange(1, 3))]
        if rnd.random() < 0.6:
            r["ports"] = [rnd.choice([{"port": 80}, {"port": "http"}, {"port": 79, "endPort": 81},
                                      {"protocol": "UDP"}])]
        return r
    for k in range(8):
        spec: dict[str, Any] = {"podSelector": rnd.choice([{}, {"matchLabels": {"app": rnd.choice(apps)}}]),
                                "policyTypes": rnd.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]])}
        spec["ingress"] = [rule("from") for _ in range(rnd.randrange(0, 3))]
        spec["egress"] = [rule("to") for _ in range(rnd.randrange(0, 3))]
        objs.append(np(f"{rnd.choice(nss)}/np{k}", spec))
    return objs


@pytest.mark.parametrize("seed", range(25))
def test_matrix_agrees_with_per_pair_evaluation(seed: int) -> None:
    snap = Snapshot.of(_random_cluster(random.Random(seed)))
    engine = Engine(snap)
    for port, proto in ((80, "TCP"), (81, "UDP")):
        m = engine.matrix(snap.pods.values(), port, proto)
        for i, src in enumerate(m.pods):
            for j, dst in enumerate(m.pods):
                a, b = snap.resolve(EndpointRef.parse(src)), snap.resolve(EndpointRef.parse(dst))
                v = engine.evaluate(a, b, port, proto)
                assert m.allowed(i, j) == v.allowed, (seed, src, dst)
                assert bool(m.ingress[i] >> j & 1) == v.ingress.allowed
                assert bool(m.egress[i] >> j & 1) == v.egress.allowed


# -- manifests: offline loading with file and line ------------------------------------------------

def test_manifest_errors_name_file_and_line(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   labels: {}\n")
    with pytest.raises(manifests.ManifestError, match=rf"^{re.escape(str(bad_yaml))}:5: invalid YAML"):
        manifests.load([str(bad_yaml)])
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n  "kind": "Pod",\n  "apiVersion": "v1",\n}\n')
    with pytest.raises(manifests.ManifestError, match=rf"^{re.escape(str(bad_json))}:4: invalid JSON"):
        manifests.load([str(bad_json)])
    invalid = tmp_path / "np.yaml"
    invalid.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
                       "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n"
                       "  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}\n")
    with pytest.raises(manifests.ManifestError) as e:
        manifests.load([str(tmp_path / "np.yaml")])
    assert str(e.value) == (f'{invalid}:5: NetworkPolicy.networking.k8s.io "p" is invalid: '
                            'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": '
                            "must be a strict subset of `cidr`")
    with pytest.raises(manifests.ManifestError, match="nowhere.yaml: no such file or directory"):
        manifests.load([str(tmp_path / "nowhere.yaml")])


def test_manifests_read_lists_workload_templates_and_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deploy.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "x"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]}}}}))
    (tmp_path / "list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "x", "labels": {"app": "web"}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ignored"}}]}))
    (tmp_path / "notes.txt").write_text("not a manifest")
    snap = manifests.load([str(tmp_path)])
    assert sorted(snap.pods) == ["x/api", "x/web"]
    assert snap.pods["x/api"].labels == {"app": "api"} and snap.pods["x/api"].named_port("http", "TCP") == 8080
