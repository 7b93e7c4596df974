"""networking.k8s.io/v1 NetworkPolicy validation (pkg/apis/networking/validation)."""
from __future__ import annotations

import ipaddress
from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_not_supported, field_required

from . import names
from .common import GoJSON, d, lst, s
from .meta import validate_object_meta, validate_object_meta_update
from .selector import validate_label_selector

_PROTOCOLS = ["TCP", "UDP", "SCTP"]
_POLICY_TYPES = ["Ingress", "Egress"]
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_cidr(value: str) -> Network | None:
    if "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _port(port: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    proto = port.get("protocol")
    if proto is not None and proto not in _PROTOCOLS:
        causes.append(field_not_supported(f"{path}.protocol", proto, _PROTOCOLS))
    p, end = port.get("port"), port.get("endPort")
    if p is not None:
        if isinstance(p, int) and not isinstance(p, bool):
            causes += [field_invalid(f"{path}.port", p, m) for m in names.is_valid_port_num(p)]
            if isinstance(end, int):
                if end < p:
                    causes.append(field_invalid(f"{path}.endPort", p, "must be greater than or equal to `port`"))
                causes += [field_invalid(f"{path}.endPort", end, m) for m in names.is_valid_port_num(end)]
        else:
            if end is not None:
                causes.append(field_invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
            causes += [field_invalid(f"{path}.port", s(p), m) for m in names.is_valid_port_name(s(p))]
    elif end is not None:
        causes.append(field_invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return causes


def _ip_block(block: dict[str, Any], path: str) -> list[Cause]:
    cidr = s(block.get("cidr"))
    if not cidr:
        return [field_required(f"{path}.cidr")]
    net = _parse_cidr(cidr)
    if net is None:
        return [field_invalid(f"{path}.cidr", cidr, _CIDR_MSG)]
    causes: list[Cause] = []
    for i, ex in enumerate(lst(block.get("except"))):
        ex = s(ex)
        ep = f"{path}.except[{i}]"
        exnet = _parse_cidr(ex)
        if exnet is None:
            causes.append(field_invalid(ep, ex, _CIDR_MSG))
            continue
        if exnet.version != net.version or exnet.network_address not in net or net.prefixlen >= exnet.prefixlen:
            causes.append(field_invalid(ep, ex, "must be a strict subset of `cidr`"))
    return causes


def _peer(peer: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            causes += validate_label_selector(d(peer[key]), f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        count += 1
        causes += _ip_block(d(peer["ipBlock"]), f"{path}.ipBlock")
    if count == 0:
        causes.append(field_required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        causes.append(field_forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def network_policy_spec(spec: dict[str, Any]) -> list[Cause]:
    causes = validate_label_selector(d(spec.get("podSelector")), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(lst(spec.get(direction))):
            rule = d(rule)
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(lst(rule.get("ports"))):
                causes += _port(d(port), f"{rp}.ports[{j}]")
            for j, peer in enumerate(lst(rule.get(peers))):
                causes += _peer(d(peer), f"{rp}.{peers}[{j}]")
    types = lst(spec.get("policyTypes"))
    if len(types) > len(_POLICY_TYPES):
        causes.append(field_invalid("spec.policyTypes", GoJSON(types), "may not specify more than two policyTypes"))
        return causes
    for i, t in enumerate(types):
        if t not in _POLICY_TYPES:
            causes.append(field_not_supported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES))
    return causes


def networkpolicy(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes = (validate_object_meta(m, True, names.name_is_dns_subdomain) if old is None
              else validate_object_meta_update(m, d(old.get("metadata"))))
    return causes + network_policy_spec(d(obj.get("spec")))
