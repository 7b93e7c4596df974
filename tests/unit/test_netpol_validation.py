"""NetworkPolicy validation: upstream's 422 messages (pkg/apis/networking/validation) for every rule,
checked on the defaulted object as the server validates it."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubegate.api import errors
from kubegate.api.defaults import apply_defaults
from kubegate.api.resources import lookup
from kubegate.api.validation import validate

NETPOL = lookup("networking.k8s.io", "v1", "networkpolicies")
assert NETPOL is not None


def message(spec: dict[str, Any], old_spec: dict[str, Any] | None = None) -> str | None:
    """The 422 message the server answers for a create (or an update from old_spec), None if valid."""
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "np", "namespace": "default"}, "spec": copy.deepcopy(spec)}
    apply_defaults(NETPOL, obj)
    old = None
    if old_spec is not None:
        old = {**obj, "spec": copy.deepcopy(old_spec),
               "metadata": {**obj["metadata"], "resourceVersion": "1", "uid": "u", "creationTimestamp": "x"}}
        obj["metadata"] = dict(old["metadata"])
        apply_defaults(NETPOL, old)
    causes = validate(NETPOL, obj, old)
    return errors.invalid(NETPOL.kind, "np", causes, NETPOL.group).message if causes else None


PREFIX = 'NetworkPolicy.networking.k8s.io "np" is invalid: '


def ingress_from(*peers: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {}, "ingress": [{"from": list(peers)}]}


def ingress_ports(*ports: dict[str, Any]) -> dict[str, Any]:
    return {"podSelector": {}, "ingress": [{"ports": list(ports)}]}


@pytest.mark.parametrize("spec,want", [
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/33"}}),
     'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0"}}),
     'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    # Python's netmask notation is not Go's CIDR syntax
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/255.0.0.0"}}),
     'spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.0/255.0.0.0": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    (ingress_from({"ipBlock": {}}), "spec.ingress[0].from[0].ipBlock.cidr: Required value"),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`'),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}}),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`'),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["fd00::/64"]}}),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "fd00::/64": must be a strict subset of `cidr`'),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/16", "except": ["bogus"]}}),
     'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "bogus": must be a valid CIDR value, '
     "(e.g. 10.9.8.0/24 or 2001:db8::/64)"),
    (ingress_ports({"endPort": 90}),
     "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is not specified"),
    (ingress_ports({"port": 100, "endPort": 90}),
     "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`"),
    (ingress_ports({"port": "http", "endPort": 90}),
     "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"),
    (ingress_ports({"port": 80, "endPort": 70000}),
     "spec.ingress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    (ingress_ports({"port": 0}), "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, "
                                 "inclusive"),
    (ingress_ports({"port": "web_1"}),
     'spec.ingress[0].ports[0].port: Invalid value: "web_1": must contain only alpha-numeric characters (a-z, 0-9), '
     "and hyphens (-)"),
    (ingress_ports({"port": "8080"}),
     'spec.ingress[0].ports[0].port: Invalid value: "8080": must contain at least one letter (a-z)'),
    (ingress_ports({"protocol": "ICMP", "port": 1}),
     'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"'),
    ({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"protocol": "tcp"}]}]},
     'spec.egress[0].ports[0].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"'),
    (ingress_from({}), "spec.ingress[0].from[0]: Required value: must specify a peer"),
    (ingress_from({"ipBlock": {"cidr": "10.0.0.0/8"}, "namespaceSelector": {}}),
     "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["a"]}]}},
     'spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator'),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
     "'NotIn'"),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}},
     "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or "
     "'DoesNotExist'"),
    (ingress_from({"namespaceSelector": {"matchLabels": {"team": "a b"}}}),
     'spec.ingress[0].from[0].namespaceSelector.matchLabels: Invalid value: "a b": a valid label must be an empty '
     "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
     "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
     "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]},
     'spec.policyTypes: Invalid value: ["Ingress","Egress","Ingress"]: may not specify more than two policyTypes'),
    ({"podSelector": {}, "policyTypes": ["ingress"]},
     'spec.policyTypes[0]: Unsupported value: "ingress": supported values: "Ingress", "Egress"'),
])
def test_rejected_with_upstreams_message(spec: dict[str, Any], want: str) -> None:
    assert message(spec) == PREFIX + want


@pytest.mark.parametrize("spec", [
    ingress_from({"ipBlock": {"cidr": "10.0.0.1/8"}}),                  # host bits: allowed (not strict in 1.36)
    ingress_from({"ipBlock": {"cidr": "010.000.000.000/8"}}),           # ParseCIDRSloppy: leading zeros
    ingress_from({"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}}),
    ingress_ports({"port": 80, "endPort": 80}, {"port": "metrics"}, {"protocol": "SCTP"}),
    ingress_from({"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}),
    {"podSelector": {}, "policyTypes": ["Egress"]},
])
def test_accepted(spec: dict[str, Any]) -> None:
    assert message(spec) is None


def test_several_causes_are_aggregated_in_order() -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"endPort": 5}], "from": [{}]}],
            "policyTypes": ["Ingress", "Sideways"]}
    assert message(spec) == PREFIX + (
        "[spec.ingress[0].ports[0].endPort: Invalid value: 5: may not be specified when `port` is not specified, "
        "spec.ingress[0].from[0]: Required value: must specify a peer, "
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"]')


def test_update_keeps_what_the_old_object_already_had() -> None:
    # ValidateNetworkPolicyUpdate: CIDRs already stored are not re-validated ...
    old = ingress_from({"ipBlock": {"cidr": "10.0.0.0/255.0.0.0"}})
    assert message(old, old_spec=old) is None
    assert message(ingress_from({"ipBlock": {"cidr": "11.0.0.0/255.0.0.0"}}), old_spec=old) is not None
    # ... and an old podSelector with invalid values lets selector values stay invalid
    bad = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a b"]}]}
    assert message({"podSelector": bad}, old_spec={"podSelector": bad}) is None
    assert message({"podSelector": bad}, old_spec={"podSelector": {}}) == PREFIX + (
        'spec.podSelector.matchExpressions[0].values[0]: Invalid value: "a b": a valid label must be an empty '
        "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
