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


def parse_cidr(value: str) -> Network | None:
    """netutils.ParseCIDRSloppy: Go's net.ParseCIDR, but IPv4 octets may have leading zeros.

    Host bits may be set (1.36 leaves StrictIPCIDRValidation off); the prefix is decimal digits
    only, so netmask forms that Python accepts ("10.0.0.0/255.0.0.0") are rejected as in Go."""
    addr, slash, prefix = value.rpartition("/")
    if not slash or not prefix.isascii() or not prefix.isdigit():
        return None
    try:
        if ":" in addr:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(addr)
            if "%" in addr:
                return None
        else:
            octets = addr.split(".")
            if len(octets) != 4 or not all(o.isascii() and o.isdigit() and int(o) <= 255 for o in octets):
                return None
            ip = ipaddress.IPv4Address(".".join(str(int(o)) for o in octets))
        bits = int(prefix)
        if bits > ip.max_prefixlen:
            return None
        return ipaddress.ip_network((ip, bits), strict=False)
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
                    causes.append(field_invalid(f"{path}.endPort", end, "must be greater than or equal to `port`"))
                causes += [field_invalid(f"{path}.endPort", end, m) for m in names.is_valid_port_num(end)]
        else:
            if end is not None:
                causes.append(field_invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
            causes += [field_invalid(f"{path}.port", s(p), m) for m in names.is_valid_port_name(s(p))]
    elif end is not None:
        causes.append(field_invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    return causes


class _Options:
    """NetworkPolicyValidationOptions: what an update may keep that a create may not."""

    def __init__(self, allow_invalid_label_value: bool = False, old_cidrs: frozenset[str] = frozenset()) -> None:
        self.allow_invalid_label_value = allow_invalid_label_value
        self.old_cidrs = old_cidrs


def _ip_block(block: dict[str, Any], path: str, opts: _Options) -> list[Cause]:
    """ValidateIPBlock; a CIDR string already in the old object is not re-validated (ratcheting)."""
    cidr = s(block.get("cidr"))
    if not cidr:
        return [field_required(f"{path}.cidr")]
    net = parse_cidr(cidr)
    if net is None:
        return [] if cidr in opts.old_cidrs else [field_invalid(f"{path}.cidr", cidr, _CIDR_MSG)]
    causes: list[Cause] = []
    for i, ex in enumerate(lst(block.get("except"))):
        ex = s(ex)
        ep = f"{path}.except[{i}]"
        exnet = parse_cidr(ex)
        if exnet is None:
            if ex not in opts.old_cidrs:
                causes.append(field_invalid(ep, ex, _CIDR_MSG))
            continue
        if exnet.version != net.version or exnet.network_address not in net or net.prefixlen >= exnet.prefixlen:
            causes.append(field_invalid(ep, ex, "must be a strict subset of `cidr`"))
    return causes


def _peer(peer: dict[str, Any], path: str, opts: _Options) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            causes += validate_label_selector(d(peer[key]), f"{path}.{key}", opts.allow_invalid_label_value)
    if peer.get("ipBlock") is not None:
        count += 1
        causes += _ip_block(d(peer["ipBlock"]), f"{path}.ipBlock", opts)
    if count == 0:
        causes.append(field_required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        causes.append(field_forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def network_policy_spec(spec: dict[str, Any], opts: _Options | None = None) -> list[Cause]:
    opts = opts or _Options()
    causes = validate_label_selector(d(spec.get("podSelector")), "spec.podSelector", opts.allow_invalid_label_value)
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(lst(spec.get(direction))):
            rule = d(rule)
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(lst(rule.get("ports"))):
                causes += _port(d(port), f"{rp}.ports[{j}]")
            for j, peer in enumerate(lst(rule.get(peers))):
                causes += _peer(d(peer), f"{rp}.{peers}[{j}]", opts)
    types = lst(spec.get("policyTypes"))
    if len(types) > len(_POLICY_TYPES):
        causes.append(field_invalid("spec.policyTypes", GoJSON(types), "may not specify more than two policyTypes"))
        return causes
    for i, t in enumerate(types):
        if t not in _POLICY_TYPES:
            causes.append(field_not_supported(f"spec.policyTypes[{i}]", t, _POLICY_TYPES))
    return causes


def _update_options(old_spec: dict[str, Any]) -> _Options:
    """ValidationOptionsForNetworking + ValidateNetworkPolicyUpdate's list of the old object's CIDRs."""
    cidrs: set[str] = set()
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rule in lst(old_spec.get(direction)):
            for peer in lst(d(rule).get(peers)):
                block = d(peer).get("ipBlock")
                if isinstance(block, dict):
                    cidrs.add(s(block.get("cidr")))
                    cidrs.update(s(e) for e in lst(block.get("except")))
    old_selector_invalid = bool(validate_label_selector(d(old_spec.get("podSelector")), "spec.podSelector"))
    return _Options(old_selector_invalid, frozenset(cidrs))


def networkpolicy(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    if old is None:
        return (validate_object_meta(m, True, names.name_is_dns_subdomain)
                + network_policy_spec(d(obj.get("spec"))))
    return (validate_object_meta_update(m, d(old.get("metadata")))
            + network_policy_spec(d(obj.get("spec")), _update_options(d(old.get("spec")))))
