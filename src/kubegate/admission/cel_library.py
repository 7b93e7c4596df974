"""The CEL function libraries of upstream's admission environment (k8s.io/apiserver/pkg/cel/environment
/base.go at 1.33): cel-go's ext.Strings (version 2) and ext.Sets, and Kubernetes' own lists, regex,
URLs, IP, CIDR, quantity, format and authorizer libraries (k8s.io/apiserver/pkg/cel/library).

cel-rust hands a Python function only plain values and takes only plain values back, so the
library's own types (Quantity, URL, IP, CIDR, the authorizer's checks and its Decision) travel as
one-key maps `{"@<type>": payload}`; every function checks the tag of what it is given. A function
that cannot take its arguments raises `no such overload`, as cel-go's runtime does; other failures
raise upstream's text (`CELError`). The authorizer asks `DECIDER`, which the evaluation sets.
"""
from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from cel import stdlib

from kubegate.api.validation import quantity as k8s_quantity
from kubegate.api.validation.names import name_is_dns_label, name_is_dns_subdomain
from kubegate.authz.types import AuthzResult, Decision


class CELError(Exception):
    """A runtime error whose text is upstream's (cel.py strips cel-rust's wrapping)."""


class NoSuchOverload(CELError):
    def __init__(self) -> None:
        super().__init__("no such overload")


class AuthorizationPending(CELError):
    """The decision for this check is not known yet: the evaluation asks the authorizer and reruns."""


QUANTITY = "@kubernetes.Quantity"
URL = "@kubernetes.URL"
IP = "@net.IP"
CIDR = "@net.CIDR"
AUTHORIZER = "@kubernetes.authorization.Authorizer"
GROUP_CHECK = "@kubernetes.authorization.GroupCheck"
RESOURCE_CHECK = "@kubernetes.authorization.ResourceCheck"
PATH_CHECK = "@kubernetes.authorization.PathCheck"
DECISION = "@kubernetes.authorization.Decision"


def _payload(value: Any, tag: str) -> Any:
    if isinstance(value, dict) and tag in value:
        return value[tag]
    raise NoSuchOverload()


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise NoSuchOverload()
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NoSuchOverload()
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise NoSuchOverload()
    return value


# ---- cel-go ext.Strings (version 2), reusing cel.stdlib with cel-go's range errors ----------------

def _check_index(i: int, size: int) -> None:
    if i < 0 or i > size:
        raise CELError(f"index out of range: {i}")


def char_at(s: Any, i: Any) -> str:
    s, i = _str(s), _int(i)
    _check_index(i, len(s))
    return stdlib.char_at(s, i)


def index_of(target: Any, item: Any, offset: Any = None) -> int:
    """Strings: the first index of a substring at or after offset; lists (k8s lists): of an element."""
    if isinstance(target, list) and offset is None:
        return next((i for i, v in enumerate(target) if _equal(v, item)), -1)
    s, sub = _str(target), _str(item)
    start = 0 if offset is None else _int(offset)
    _check_index(start, len(s))
    return stdlib.index_of(s, sub, start)


def last_index_of(target: Any, item: Any, offset: Any = None) -> int:
    if isinstance(target, list) and offset is None:
        return next((i for i in range(len(target) - 1, -1, -1) if _equal(target[i], item)), -1)
    s, sub = _str(target), _str(item)
    if offset is None:
        return stdlib.last_index_of(s, sub)
    end = _int(offset)
    _check_index(end, len(s))
    return stdlib.last_index_of(s, sub, end)


def lower_ascii(s: Any) -> str:
    return stdlib.lower_ascii(_str(s))


def upper_ascii(s: Any) -> str:
    return stdlib.upper_ascii(_str(s))


def replace(s: Any, old: Any, new: Any, limit: Any = -1) -> str:
    return stdlib.replace(_str(s), _str(old), _str(new), _int(limit))


def split(s: Any, sep: Any, limit: Any = None) -> list[str]:
    return stdlib.split(_str(s), _str(sep), None if limit is None else _int(limit))


def substring(s: Any, start: Any, end: Any = None) -> str:
    s, start = _str(s), _int(start)
    stop = len(s) if end is None else _int(end)
    _check_index(start, len(s))
    _check_index(stop, len(s))
    if start > stop:
        raise CELError(f"invalid substring range. start: {start}, end: {stop}")
    return stdlib.substring(s, start, stop)


def trim(s: Any) -> str:
    return stdlib.trim(_str(s))


def join(items: Any, sep: Any = "") -> str:
    items = _list(items)
    if not all(isinstance(v, str) for v in items):
        raise NoSuchOverload()
    return stdlib.join(items, _str(sep))


def quote(s: Any) -> str:
    return stdlib.quote(_str(s))


# ---- format (ext.Strings' string.format, which Kubernetes' format library extends) ----------------

_CLAUSE = re.compile(r"%(?:\.(\d+))?([a-zA-Z%])")


def _format_value(value: Any) -> str:
    """%s: how cel-go's format prints a value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        if not math.isfinite(value) or value == int(value):
            return _format_double(value, None, "f")
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_format_value(k)}:{_format_value(v)}" for k, v in sorted(
            value.items(), key=lambda kv: _format_value(kv[0]))) + "}"
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _format_double(value: float, precision: int | None, verb: str) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb == "f" and precision is None and value == int(value):
        return str(int(value))
    return f"{value:.{6 if precision is None else precision}{verb}}"


def _format_clause(verb: str, precision: int | None, value: Any) -> str:
    if verb == "s":
        return _format_value(value)
    if verb == "d":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CELError(f"error during formatting: decimal clause can only be used on integers, was given "
                           f"{_type_name(value)}")
        return str(value)
    if verb in "fe":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CELError(f"error during formatting: {'fixed-point' if verb == 'f' else 'scientific'} clause can "
                           f"only be used on doubles, was given {_type_name(value)}")
        return _format_double(float(value), precision, verb)
    if verb in "bo":
        if isinstance(value, bool):
            return format(int(value), verb)
        if not isinstance(value, int):
            raise CELError(f"error during formatting: only integers and bools can be formatted as "
                           f"{'binary' if verb == 'b' else 'octal'}, was given {_type_name(value)}")
        return format(value, verb)
    if verb in "xX":
        if isinstance(value, (str, bytes)):
            raw = value.encode() if isinstance(value, str) else value
            text = raw.hex()
        elif isinstance(value, int) and not isinstance(value, bool):
            text = format(value, "x")
        else:
            raise CELError(f"error during formatting: only integers, byte buffers, and strings can be formatted as "
                           f"hex, was given {_type_name(value)}")
        return text.upper() if verb == "X" else text
    raise CELError(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')


def format_(fmt: Any, args: Any) -> str:
    fmt, args = _str(fmt), _list(args)
    out: list[str] = []
    pos = used = 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:i])
        m = _CLAUSE.match(fmt, i)
        if m is None:
            raise CELError("could not parse formatting clause: unrecognized formatting clause")
        pos = m.end()
        if m.group(2) == "%":
            out.append("%")
            continue
        if used >= len(args):
            raise CELError(f"index {used} out of range")
        out.append(_format_clause(m.group(2), None if m.group(1) is None else int(m.group(1)), args[used]))
        used += 1
    return "".join(out)


# ---- Kubernetes lists ----------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    for t, name in ((bool, "bool"), (int, "int"), (float, "double"), (str, "string"), (bytes, "bytes"),
                    (list, "list"), (dict, "map"), (timedelta, "google.protobuf.Duration"),
                    (datetime, "google.protobuf.Timestamp")):
        if isinstance(value, t):
            return name
    return "null_type" if value is None else type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _comparable(items: list[Any]) -> None:
    """cel-go compares values of one type only (numbers cross-compare), never lists or maps."""
    kinds = {("number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v)) for v in items}
    if len(kinds) > 1 or any(isinstance(v, (list, dict)) or v is None for v in items):
        raise NoSuchOverload()


def is_sorted(items: Any) -> bool:
    items = _list(items)
    _comparable(items)
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))


def sum_(items: Any) -> Any:
    items = _list(items)
    if any(isinstance(v, bool) for v in items):
        raise NoSuchOverload()
    try:
        return stdlib.sum_(items)
    except TypeError:
        raise NoSuchOverload() from None


def _extreme(name: str, items: Any, pick: Callable[[list[Any]], Any]) -> Any:
    items = _list(items)
    _comparable(items)
    if not items:
        raise CELError(f"{name} called on empty list")
    return pick(items)


def min_(items: Any) -> Any:
    return _extreme("min", items, min)


def max_(items: Any) -> Any:
    return _extreme("max", items, max)


# ---- Kubernetes regex (RE2 there; Python's re here, the same for the common syntax) ----------------

def _regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(_str(pattern))
    except re.error as e:
        raise CELError(f"Illegal regex: error parsing regexp: {e}") from None


def find(s: Any, pattern: Any) -> str:
    m = _regex(pattern).search(_str(s))
    return m.group(0) if m else ""


def find_all(s: Any, pattern: Any, limit: Any = -1) -> list[str]:
    s, n = _str(s), _int(limit)
    found = [m.group(0) for m in _regex(pattern).finditer(s)]
    return found if n < 0 else found[:n]


# ---- Kubernetes URLs (Go's url.ParseRequestURI, then url.Parse) ------------------------------------

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_PATH_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:@[]/%")


@dataclass(frozen=True)
class _URL:
    scheme: str
    host: str
    raw_path: str
    raw_query: str


def _url_error(raw: str, text: str) -> CELError:
    return CELError(f'URL parse error during conversion from string: parse "{raw}": {text}')


def _parse_url(raw: str) -> _URL:
    if raw == "":
        raise _url_error(raw, "empty url")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise _url_error(raw, "net/url: invalid control character in URL")
    rest = raw.partition("#")[0]
    scheme = ""
    m = _SCHEME.match(rest)
    if m:
        scheme, rest = rest[:m.end() - 1].lower(), rest[m.end():]
    elif rest.startswith(":"):
        raise _url_error(raw, "missing protocol scheme")
    rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        raise _url_error(raw, "invalid URI for request")
    host = ""
    if scheme and rest.startswith("//"):  # a request URI without a scheme is all path
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = authority.rpartition("@")[2]
        _check_host(raw, host)
    return _URL(scheme, host, rest, query)


def _check_host(raw: str, host: str) -> None:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise _url_error(raw, "missing ']' in host")
        port = host[end + 1:]
        if port and (not port.startswith(":") or not port[1:].isdigit() and port != ":"):
            raise _url_error(raw, f'invalid port "{port}" after host')
        return
    name, colon, port = host.rpartition(":") if ":" in host else (host, "", "")
    if colon and port and not port.isdigit():
        raise _url_error(raw, f'invalid port ":{port}" after host')
    for c in name:
        if c in " <>\"{}|\\^`":
            raise _url_error(raw, f'invalid character "{c}" in host name')


def _url(value: Any) -> _URL:
    return _parse_url(_str(_payload(value, URL)))


def url(s: Any) -> dict[str, str]:
    s = _str(s)
    _parse_url(s)
    return {URL: s}


def is_url(s: Any) -> bool:
    try:
        _parse_url(_str(s))
    except CELError as e:
        if isinstance(e, NoSuchOverload):
            raise
        return False
    return True


def get_scheme(u: Any) -> str:
    return _url(u).scheme


def get_host(u: Any) -> str:
    return _url(u).host


def _split_host(host: str) -> tuple[str, str]:
    if host.startswith("["):
        end = host.find("]")
        return host[1:end], host[end + 2:] if host[end + 1:end + 2] == ":" else ""
    name, colon, port = host.rpartition(":")
    return (name, port) if colon else (host, "")


def get_hostname(u: Any) -> str:
    return _split_host(_url(u).host)[0]


def get_port(u: Any) -> str:
    return _split_host(_url(u).host)[1]


def get_escaped_path(u: Any) -> str:
    """Go's EscapedPath: the path as written when that is a valid encoding of it, else escaped."""
    raw = _url(u).raw_path
    if all(c in _PATH_OK for c in raw) and not re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        return raw
    return urllib.parse.quote(urllib.parse.unquote(raw), safe="/$&+,:;=@")


def get_query(u: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in urllib.parse.parse_qsl(_url(u).raw_query, keep_blank_values=True):
        out.setdefault(k, []).append(v)
    return out


# ---- Kubernetes IP and CIDR (net/netip) ----------------------------------------------------------

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _netip_error(raw: str) -> str:
    """netip.ParseAddr's message for the common IPv4 mistakes; a generic one otherwise."""
    if ":" not in raw:
        if "." not in raw:
            return f'ParseAddr("{raw}"): unable to parse IP'
        fields = raw.split(".")
        for f in fields:
            if f.isdigit() and len(f) > 1 and f[0] == "0":
                return f'ParseAddr("{raw}"): IPv4 field has octet with leading zero'
            if f.isdigit() and int(f) > 255:
                return f'ParseAddr("{raw}"): IPv4 field has value >255'
        if len(fields) < 4:
            return f'ParseAddr("{raw}"): IPv4 address too short'
        if len(fields) > 4:
            return f'ParseAddr("{raw}"): IPv4 address too long'
        return f'ParseAddr("{raw}"): unexpected character'
    return f'ParseAddr("{raw}"): invalid IPv6 address'


def _parse_ip(raw: str) -> Address:
    if "%" in raw:
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            pass
        else:
            raise CELError(f'IP address "{raw}" with zone value is not allowed')
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        raise CELError(f'IP Address "{raw}" parse error during conversion from string: {_netip_error(raw)}') \
            from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise CELError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return addr


_CIDR_ERROR = "network address parse error during conversion from string: "


def _parse_cidr(raw: str) -> Network:
    """parseCIDR: netip.ParsePrefix, refusing IPv4-mapped addresses."""
    addr, slash, bits = raw.partition("/")
    where = f'netip.ParsePrefix("{raw}")'
    if not slash:
        raise CELError(f"{_CIDR_ERROR}{where}: no '/'")
    if "%" in addr:
        raise CELError(f"{_CIDR_ERROR}{where}: IPv6 zones cannot be present in a prefix")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise CELError(f"{_CIDR_ERROR}{where}: {_netip_error(addr)}") from None
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise CELError(f'{_CIDR_ERROR}{where}: bad bits after slash: "{bits}"')
    if int(bits) > ip.max_prefixlen:
        raise CELError(f"{_CIDR_ERROR}{where}: prefix length out of range")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        raise CELError(f'IPv4-mapped IPv6 address "{raw}" is not allowed')
    return ipaddress.ip_interface(f"{ip}/{int(bits)}")


def _string_to_cidr(raw: str) -> Network:
    # stringToCIDR wraps parseCIDR's error in the same prefix again, as upstream does.
    try:
        return _parse_cidr(raw)
    except CELError as e:
        raise CELError(f"{_CIDR_ERROR}{e}") from None


def _ip(value: Any) -> Address:
    return ipaddress.ip_address(_str(_payload(value, IP)))


def _cidr(value: Any) -> Network:
    return ipaddress.ip_interface(_str(_payload(value, CIDR)))


def ip(value: Any) -> dict[str, str]:
    """ip(string), and <CIDR>.ip(): the prefix's address."""
    if isinstance(value, dict) and CIDR in value:
        return {IP: str(_cidr(value).ip)}
    return {IP: str(_parse_ip(_str(value)))}


def is_ip(s: Any) -> bool:
    try:
        _parse_ip(_str(s))
    except NoSuchOverload:
        raise
    except CELError:
        return False
    return True


def ip_is_canonical(s: Any) -> bool:
    s = _str(s)
    return str(_parse_ip(s)) == s


def family(value: Any) -> int:
    return _ip(value).version


def is_unspecified(value: Any) -> bool:
    return _ip(value).is_unspecified


def is_loopback(value: Any) -> bool:
    return _ip(value).is_loopback


def is_link_local_multicast(value: Any) -> bool:
    """Go's IsLinkLocalMulticast: 224.0.0.0/24, or IPv6 multicast of link-local scope (ffX2::/16)."""
    a = _ip(value)
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    packed = a.packed
    return packed[0] == 0xFF and packed[1] & 0x0F == 0x02


def is_link_local_unicast(value: Any) -> bool:
    return _ip(value).is_link_local


def is_global_unicast(value: Any) -> bool:
    """Go's IsGlobalUnicast: not unspecified, loopback, multicast, link-local or IPv4 broadcast."""
    a = _ip(value)
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local)


def cidr(s: Any) -> dict[str, str]:
    return {CIDR: str(_string_to_cidr(_str(s)))}


def is_cidr(s: Any) -> bool:
    try:
        _parse_cidr(_str(s))
    except NoSuchOverload:
        raise
    except CELError:
        return False
    return True


def contains_ip(c: Any, other: Any) -> bool:
    net = _cidr(c).network
    addr = _parse_ip(other) if isinstance(other, str) else _ip(other)
    return addr.version == net.version and addr in net


def contains_cidr(c: Any, other: Any) -> bool:
    net = _cidr(c)
    inner = _string_to_cidr(other) if isinstance(other, str) else _cidr(other)
    if inner.version != net.version or net.network.prefixlen > inner.network.prefixlen:
        return False
    return inner.ip in net.network


def prefix_length(c: Any) -> int:
    return _cidr(c).network.prefixlen


def masked(c: Any) -> dict[str, str]:
    return {CIDR: str(_cidr(c).network)}


def string_(value: Any) -> str:
    """string(<IP>) and string(<CIDR>); cel-rust's own string() handles every other type first."""
    if isinstance(value, dict) and IP in value:
        return str(_ip(value))
    if isinstance(value, dict) and CIDR in value:
        return str(_cidr(value))
    raise NoSuchOverload()


# ---- Kubernetes quantity (resource.Quantity, parsed by kubegate's own quantity parser) -------------

_QUANTITY_RE = re.compile(k8s_quantity.QUANTITY_REGEX)


def _parse_quantity(raw: str) -> Decimal:
    m = _QUANTITY_RE.match(raw)
    if not m:
        raise CELError(k8s_quantity.QUANTITY_ERROR)
    try:
        Decimal(m.group(1))
    except InvalidOperation:
        raise CELError("unable to parse quantity's numeric part") from None
    value = k8s_quantity.parse(raw)
    if value is None:
        raise CELError("unable to parse quantity's suffix")
    return value


def _quantity_value(value: Decimal) -> dict[str, str]:
    # One canonical spelling per number, so == compares quantities as Quantity.Equal does.
    return {QUANTITY: "0" if value == 0 else str(value.normalize())}


def _q(value: Any) -> Decimal:
    return Decimal(_str(_payload(value, QUANTITY)))


def _q_or_int(value: Any) -> Decimal:
    return Decimal(_int(value)) if isinstance(value, int) and not isinstance(value, bool) else _q(value)


def quantity(s: Any) -> dict[str, str]:
    return _quantity_value(_parse_quantity(_str(s)))


def is_quantity(s: Any) -> bool:
    try:
        _parse_quantity(_str(s))
    except NoSuchOverload:
        raise
    except CELError:
        return False
    return True


def _cmp(a: Decimal, b: Decimal) -> int:
    return (a > b) - (a < b)


def compare_to(a: Any, b: Any) -> int:
    return _cmp(_q(a), _q(b))


def is_less_than(a: Any, b: Any) -> bool:
    return compare_to(a, b) < 0


def is_greater_than(a: Any, b: Any) -> bool:
    return compare_to(a, b) > 0


def add(a: Any, b: Any) -> dict[str, str]:
    return _quantity_value(_q(a) + _q_or_int(b))


def sub(a: Any, b: Any) -> dict[str, str]:
    return _quantity_value(_q(a) - _q_or_int(b))


def sign(a: Any) -> int:
    return _cmp(_q(a), Decimal(0))


_INT64 = (-(2**63), 2**63 - 1)


def is_integer(a: Any) -> bool:
    v = _q(a)
    return v == v.to_integral_value() and _INT64[0] <= v <= _INT64[1]


def as_integer(a: Any) -> int:
    if not is_integer(a):
        raise CELError("cannot convert value to integer")
    return int(_q(a))


def as_approximate_float(a: Any) -> float:
    return float(_q(a))


# ---- Kubernetes authorizer -----------------------------------------------------------------------

@dataclass(frozen=True)
class AccessCheck:
    """One question for the authorizer; `service_account` (namespace, name) replaces the requester."""

    verb: str
    service_account: tuple[str, str] | None = None
    path: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    field_selector: str = ""
    label_selector: str = ""


# The evaluation's decision function: the answer for a check, or AuthorizationPending.
DECIDER: ContextVar[Callable[[AccessCheck], AuthzResult] | None] = ContextVar("kubegate_cel_decider",
                                                                               default=None)


def authorizer_value(group: str, resource: str, subresource: str, namespace: str, name: str) -> dict[str, Any]:
    """The `authorizer` variable; `authorizer.requestResource` checks the request's own resource."""
    request = {"group": group, "resource": resource, "subresource": subresource, "namespace": namespace,
               "name": name, "serviceAccount": None, "fieldSelector": "", "labelSelector": ""}
    return {AUTHORIZER: {"serviceAccount": None}, "requestResource": {RESOURCE_CHECK: request}}


def path(authz: Any, p: Any) -> dict[str, Any]:
    sa, p = _payload(authz, AUTHORIZER)["serviceAccount"], _str(p)
    if not p.strip():
        raise CELError("path must not be empty")
    return {PATH_CHECK: {"serviceAccount": sa, "path": p}}


def group(authz: Any, g: Any) -> dict[str, Any]:
    return {GROUP_CHECK: {"serviceAccount": _payload(authz, AUTHORIZER)["serviceAccount"], "group": _str(g)}}


def service_account(authz: Any, namespace: Any, name: Any) -> dict[str, Any]:
    _payload(authz, AUTHORIZER)
    namespace, name = _str(namespace), _str(name)
    if name_is_dns_subdomain(name, False):
        raise CELError("Invalid service account name")
    if name_is_dns_label(namespace, False):
        raise CELError("Invalid service account namespace")
    return {AUTHORIZER: {"serviceAccount": [namespace, name]}}


def resource(g: Any, r: Any) -> dict[str, Any]:
    check, r = _payload(g, GROUP_CHECK), _str(r)
    if not r.strip():
        raise CELError("resource must not be empty")
    return {RESOURCE_CHECK: {"group": check["group"], "resource": r, "subresource": "", "namespace": "", "name": "",
                             "serviceAccount": check["serviceAccount"], "fieldSelector": "", "labelSelector": ""}}


def _with(field: str) -> Callable[[Any, Any], dict[str, Any]]:
    def set_field(r: Any, value: Any) -> dict[str, Any]:
        return {RESOURCE_CHECK: dict(_payload(r, RESOURCE_CHECK), **{field: _str(value)})}
    return set_field


def check(target: Any, verb: Any) -> dict[str, Any]:
    verb = _str(verb)
    if isinstance(target, dict) and PATH_CHECK in target:
        p = target[PATH_CHECK]
        question = AccessCheck(verb, _sa(p["serviceAccount"]), path=p["path"])
    else:
        r = _payload(target, RESOURCE_CHECK)
        question = AccessCheck(verb, _sa(r["serviceAccount"]), group=r["group"], resource=r["resource"],
                               subresource=r["subresource"], namespace=r["namespace"], name=r["name"],
                               field_selector=r["fieldSelector"], label_selector=r["labelSelector"])
    decide = DECIDER.get()
    if decide is None:
        raise CELError("authorizer is not available")
    result = decide(question)
    return {DECISION: {"allowed": result.decision is Decision.ALLOW, "reason": result.reason,
                       "error": result.error or ""}}


def _sa(value: Any) -> tuple[str, str] | None:
    return (str(value[0]), str(value[1])) if isinstance(value, list) and len(value) == 2 else None


def allowed(d: Any) -> bool:
    return bool(_payload(d, DECISION)["allowed"])


def reason(d: Any) -> str:
    return str(_payload(d, DECISION)["reason"])


def errored(d: Any) -> bool:
    return bool(_payload(d, DECISION)["error"])


def error(d: Any) -> str:
    return str(_payload(d, DECISION)["error"])


# ---- The environment -----------------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[..., Any]] = {
    # cel-go core conversions cel-rust lacks
    "bool": stdlib.bool_,
    # ext.Strings v2 and its format
    "charAt": char_at, "indexOf": index_of, "lastIndexOf": last_index_of, "lowerAscii": lower_ascii,
    "upperAscii": upper_ascii, "replace": replace, "split": split, "substring": substring, "trim": trim,
    "join": join, "strings.quote": quote, "format": format_,
    # ext.Sets
    "sets.contains": stdlib.sets_contains, "sets.equivalent": stdlib.sets_equivalent,
    "sets.intersects": stdlib.sets_intersects,
    # Kubernetes lists (indexOf/lastIndexOf above take lists too)
    "isSorted": is_sorted, "sum": sum_, "min": min_, "max": max_,
    # Kubernetes regex
    "find": find, "findAll": find_all,
    # Kubernetes URLs
    "url": url, "isURL": is_url, "getScheme": get_scheme, "getHost": get_host, "getHostname": get_hostname,
    "getPort": get_port, "getEscapedPath": get_escaped_path, "getQuery": get_query,
    # Kubernetes IP and CIDR
    "ip": ip, "isIP": is_ip, "ip.isCanonical": ip_is_canonical, "family": family, "isUnspecified": is_unspecified,
    "isLoopback": is_loopback, "isLinkLocalMulticast": is_link_local_multicast,
    "isLinkLocalUnicast": is_link_local_unicast, "isGlobalUnicast": is_global_unicast, "string": string_,
    "cidr": cidr, "isCIDR": is_cidr, "containsIP": contains_ip, "containsCIDR": contains_cidr,
    "prefixLength": prefix_length, "masked": masked,
    # Kubernetes quantity
    "quantity": quantity, "isQuantity": is_quantity, "compareTo": compare_to, "isLessThan": is_less_than,
    "isGreaterThan": is_greater_than, "add": add, "sub": sub, "sign": sign, "isInteger": is_integer,
    "asInteger": as_integer, "asApproximateFloat": as_approximate_float,
    # Kubernetes authorizer (and the authzSelectors library, GA with AuthorizeWithSelectors)
    "path": path, "group": group, "serviceAccount": service_account, "resource": resource,
    "subresource": _with("subresource"), "namespace": _with("namespace"), "name": _with("name"),
    "fieldSelector": _with("fieldSelector"), "labelSelector": _with("labelSelector"), "check": check,
    "allowed": allowed, "reason": reason, "errored": errored, "error": error,
}
