"""The CEL libraries of the admission environment (admission/cel_library.py) through cel.py, with the
values and error texts of upstream's k8s.io/apiserver/pkg/cel/library tests and doc examples."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubegate.admission import cel as admission_cel
from kubegate.admission import cel_library
from kubegate.authn.user import UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision

NAMES = admission_cel.BASE_VARIABLES | {"params", "variables"}


def ev(expression: str, **activation: Any) -> Any:
    return admission_cel.evaluate(admission_cel.compile_expression(expression, NAMES), activation)


def runtime_error(expression: str, **activation: Any) -> str:
    with pytest.raises(admission_cel.CELRuntimeError) as e:
        ev(expression, **activation)
    return str(e.value)


def compile_error(expression: str) -> str:
    with pytest.raises(admission_cel.CELCompileError) as e:
        admission_cel.compile_expression(expression, NAMES)
    return str(e.value)


@pytest.mark.parametrize("expression,want", [
    # quantity_test.go
    ('quantity("12Mi") == quantity("12582912")', True),
    ('isQuantity("20")', True), ('isQuantity("20M")', True), ('isQuantity("20Mi")', True),
    ('isQuantity("20Mo")', False), ('isQuantity("10Mm")', False),
    ('quantity("200M") == quantity("200M")', True),
    ('quantity("200M") == quantity("0.2G") && quantity("0.2G") == quantity("200M")', True),
    ('quantity("2M") == quantity("0.002G") && quantity("2000k") == quantity("2M")', True),
    ('quantity("200M") == quantity("0.3G")', False),
    ('quantity("50M").isLessThan(quantity("50Mi"))', True),
    ('quantity("100M").isLessThan(quantity("50M"))', False),
    ('quantity("50Mi").isGreaterThan(quantity("50M"))', True),
    ('quantity("50M").isGreaterThan(quantity("100M"))', False),
    ('quantity("200M").compareTo(quantity("0.2G"))', 0),
    ('quantity("50M").compareTo(quantity("50Mi"))', -1),
    ('quantity("50Mi").compareTo(quantity("50M"))', 1),
    ('quantity("50k").add(quantity("20")) == quantity("50.02k")', True),
    ('quantity("50k").add(20).isLessThan(quantity("50020"))', False),
    ('quantity("50k").sub(quantity("20")) == quantity("49.98k")', True),
    ('quantity("50k").sub(20) == quantity("49980")', True),
    ('quantity("50k").add(20).sub(quantity("100k")).asInteger()', -49980),
    ('quantity("50k").add(20).sub(quantity("100k")).sub(-50000).asInteger()', 20),
    ('quantity("50k").asInteger()', 50000),
    ('quantity("9999999999999999999999999999999999999G").isInteger()', False),
    ('quantity("50").isInteger()', True),
    ('quantity("50.703k").asApproximateFloat()', 50703.0),
    ('quantity("-5").sign()', -1), ('quantity("0").sign()', 0), ('quantity("1m").sign()', 1),
])
def test_quantity(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_quantity_errors() -> None:
    assert runtime_error('quantity("10Mo")') == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    assert runtime_error('quantity("10Mm")') == "unable to parse quantity's suffix"
    assert runtime_error('quantity("1.2.3")') == "unable to parse quantity's numeric part"
    assert runtime_error('quantity("9999999999999999999999999999999999999G").asInteger()') == \
        "cannot convert value to integer"
    assert runtime_error('isQuantity([1, 2, 3])') == "no such overload"
    assert runtime_error('quantity("1").isLessThan(1)') == "no such overload"


@pytest.mark.parametrize("expression,want", [
    # urls.go doc examples
    ('isURL("https://user:pass@example.com:80/path?query=val#fragment")', True),
    ('isURL("/absolute-path")', True), ('isURL("https://a:b:c/")', False), ('isURL("../relative-path")', False),
    ('url("/path").getScheme()', ""), ('url("https://example.com/").getScheme()', "https"),
    ('url("https://example.com:80/").getHost()', "example.com:80"),
    ('url("https://example.com/").getHost()', "example.com"),
    ('url("https://[::1]:80/").getHost()', "[::1]:80"), ('url("https://[::1]/").getHost()', "[::1]"),
    ('url("/path").getHost()', ""),
    ('url("https://example.com:80/").getHostname()', "example.com"),
    ('url("https://127.0.0.1:80/").getHostname()', "127.0.0.1"),
    ('url("https://[::1]:80/").getHostname()', "::1"), ('url("/path").getHostname()', ""),
    ('url("https://example.com:80/").getPort()', "80"), ('url("https://example.com/").getPort()', ""),
    ('url("/path").getPort()', ""),
    ('url("https://example.com/path").getEscapedPath()', "/path"),
    ('url("https://example.com/path with spaces/").getEscapedPath()', "/path%20with%20spaces/"),
    ('url("https://example.com").getEscapedPath()', ""),
    ('url("https://example.com/path?k1=a&k2=b&k2=c").getQuery()', {"k1": ["a"], "k2": ["b", "c"]}),
    ('url("https://example.com/path?key with spaces=value with spaces").getQuery()',
     {"key with spaces": ["value with spaces"]}),
    ('url("https://example.com/path?").getQuery()', {}), ('url("https://example.com/path").getQuery()', {}),
])
def test_urls(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_url_errors() -> None:
    assert runtime_error('url("../relative-path")') == \
        'URL parse error during conversion from string: parse "../relative-path": invalid URI for request'
    assert runtime_error('url("https://a:b:c/")') == \
        'URL parse error during conversion from string: parse "https://a:b:c/": invalid port ":c" after host'
    assert runtime_error('url("https://example.com").getHost().getHost()') == "no such overload"


@pytest.mark.parametrize("expression,want", [
    # ip.go / cidr.go doc examples
    ('isIP("127.0.0.1")', True), ('isIP("::1")', True), ('isIP("127.0.0.256")', False), ('isIP(":::1")', False),
    ('isIP("::ffff:1.2.3.4")', False), ('isIP("fe80::1%eth0")', False),
    ('ip.isCanonical("127.0.0.1")', True), ('ip.isCanonical("2001:db8::abcd")', True),
    ('ip.isCanonical("2001:DB8::ABCD")', False), ('ip.isCanonical("2001:db8::0:0:0:abcd")', False),
    ('ip("127.0.0.1").family()', 4), ('ip("::1").family() == 6', True),
    ('ip("0.0.0.0").isUnspecified()', True), ('ip("::").isUnspecified()', True),
    ('ip("127.0.0.1").isLoopback()', True), ('ip("192.168.0.1").isLoopback()', False),
    ('ip("::1").isLoopback()', True), ('ip("2001:db8::abcd").isLoopback()', False),
    ('ip("224.0.0.1").isLinkLocalMulticast()', True), ('ip("224.0.1.1").isLinkLocalMulticast()', False),
    ('ip("ff02::1").isLinkLocalMulticast()', True), ('ip("fd00::1").isLinkLocalMulticast()', False),
    ('ip("169.254.169.254").isLinkLocalUnicast()', True), ('ip("192.168.0.1").isLinkLocalUnicast()', False),
    ('ip("fe80::1").isLinkLocalUnicast()', True), ('ip("fd80::1").isLinkLocalUnicast()', False),
    ('ip("192.168.0.1").isGlobalUnicast()', True), ('ip("255.255.255.255").isGlobalUnicast()', False),
    ('ip("2001:db8::abcd").isGlobalUnicast()', True), ('ip("ff00::1").isGlobalUnicast()', False),
    ('string(ip("2001:DB8::ABCD"))', "2001:db8::abcd"),
    ('ip("127.0.0.1") == ip("127.0.0.1")', True),
    ('isCIDR("192.168.0.0/24")', True), ('isCIDR("192.168.0.0")', False), ('isCIDR("::ffff:1.2.3.4/96")', False),
    ('cidr("192.168.0.0/24").containsIP(ip("192.168.0.1"))', True),
    ('cidr("192.168.0.0/24").containsIP("192.168.1.1")', False),
    ('cidr("192.168.0.0/24").containsIP("::1")', False),
    ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/25"))', True),
    ('cidr("192.168.0.0/24").containsCIDR("192.168.0.0/23")', False),
    ('cidr("192.168.0.0/24").prefixLength()', 24),
    ('string(cidr("192.168.0.1/24").masked())', "192.168.0.0/24"),
    ('string(cidr("192.168.0.1/24").ip())', "192.168.0.1"),
    ('cidr("192.168.0.1/24").ip().family()', 4),
    ('string(cidr("::1/128"))', "::1/128"),
    # cidr_test.go (IPv6)
    ('cidr("2001:db8::/32").containsIP(ip("2001:db8::1"))', True),
    ('cidr("2001:db8::/32").containsIP("2001:dc8::1")', False),
    ('cidr("2001:db8::/32").containsCIDR(cidr("2001:db8::/33"))', True),
    ('cidr("2001:db8::/32").containsCIDR("2001:db8::/31")', False),
    ('string(cidr("2001:db8::/32").ip())', "2001:db8::"),
    ('cidr("2001:db8:1::/32").masked() == cidr("2001:db8::/32")', True),
    ('cidr("2001:db8::/32").prefixLength()', 32),
])
def test_ip_and_cidr(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_ip_and_cidr_errors() -> None:
    assert runtime_error('ip("127.0.0.256")') == ('IP Address "127.0.0.256" parse error during conversion from '
                                                  'string: ParseAddr("127.0.0.256"): IPv4 field has value >255')
    assert runtime_error('ip("::ffff:1.2.3.4")') == 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'
    assert runtime_error('ip("fe80::1%eth0")') == 'IP address "fe80::1%eth0" with zone value is not allowed'
    # cidr_test.go: upstream wraps the prefix error twice.
    assert runtime_error('cidr("192.168.0.0/")') == (
        'network address parse error during conversion from string: network address parse error during '
        'conversion from string: netip.ParsePrefix("192.168.0.0/"): bad bits after slash: ""')
    assert runtime_error('cidr("2001:db8::/")') == (
        'network address parse error during conversion from string: network address parse error during '
        'conversion from string: netip.ParsePrefix("2001:db8::/"): bad bits after slash: ""')
    assert runtime_error('cidr("192.168.0.0/33")').endswith('netip.ParsePrefix("192.168.0.0/33"): '
                                                            'prefix length out of range')
    assert runtime_error('cidr("::ffff:1.2.3.4/120")') == ('network address parse error during conversion from '
                                                         'string: IPv4-mapped IPv6 address "::ffff:1.2.3.4/120" '
                                                         'is not allowed')
    assert runtime_error('ip("1.2.3.4").prefixLength()') == "no such overload"


@pytest.mark.parametrize("expression,want", [
    # lists.go doc examples
    ("[1, 2, 3].isSorted()", True), ("['a', 'b', 'b', 'c'].isSorted()", True), ("[2.0, 1.0].isSorted()", False),
    ("[1, 2, 3].sum()", 6), ("[1.0, 2.0, 3.0].sum()", 6.0), ("[].sum()", 0),
    ("[1, 2, 3].min()", 1), ("[1, 3, 2].max()", 3), ("['c', 'a'].min()", "a"),
    ("[1, 2, 2, 3].indexOf(2)", 1), ("['a', 'b', 'b', 'c'].indexOf('a')", 0), ("[1, 2].indexOf(5)", -1),
    ("[1, 2, 2, 3].lastIndexOf(2)", 2), ("[1.0].lastIndexOf(1.1)", -1),
])
def test_lists(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_list_errors() -> None:
    assert runtime_error("[].min()") == "min called on empty list"
    assert runtime_error("[].max()") == "max called on empty list"
    assert runtime_error("[{'a': 1}, {'b': 2}].isSorted()") == "no such overload"
    assert runtime_error("[1, 'a'].isSorted()") == "no such overload"
    assert runtime_error("'abc'.isSorted()") == "no such overload"
    assert runtime_error("[true, false].sum()") == "no such overload"


@pytest.mark.parametrize("expression,want", [
    # regex.go doc examples
    ("'abc 123'.find('[0-9]+')", "123"), ("'abc 123'.find('xyz')", ""),
    ("'123 abc 456'.findAll('[0-9]+')", ["123", "456"]), ("'123 abc 456'.findAll('[0-9]+', 1)", ["123"]),
    ("'123 abc 456'.findAll('xyz')", []),
])
def test_regex(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_regex_error() -> None:
    assert runtime_error("'abc'.find('[')").startswith("Illegal regex: error parsing regexp: ")


@pytest.mark.parametrize("expression,want", [
    # cel-go ext.Strings (version 2) and format
    ("'hello'.charAt(1)", "e"), ("'hello'.charAt(5)", ""),
    ("'hello mellow'.indexOf('ello')", 1), ("'hello mellow'.indexOf('ello', 6)", 7),
    ("'hello mellow'.lastIndexOf('ello')", 7), ("'hello mellow'.lastIndexOf('ello', 6)", 1),
    ("'TacoCat'.lowerAscii()", "tacocat"), ("'TacoCat'.upperAscii()", "TACOCAT"),
    ("'hello hello'.replace('he', 'we')", "wello wello"), ("'hello hello'.replace('he', 'we', 1)", "wello hello"),
    ("'hello hello hello'.split(' ')", ["hello", "hello", "hello"]),
    ("'hello hello hello'.split(' ', 2)", ["hello", "hello hello"]),
    ("'tacocat'.substring(4)", "cat"), ("'tacocat'.substring(0, 4)", "taco"),
    ("'  \\ttrim\\n    '.trim()", "trim"),
    ("['hello', 'mellow'].join()", "hellomellow"), ("['hello', 'mellow'].join(' ')", "hello mellow"),
    ("strings.quote('single-quote with \"double quote\"')", '"single-quote with \\"double quote\\""'),
    ("'%s is %d years, %.2f%%'.format(['Kim', 30, 1.5])", "Kim is 30 years, 1.50%"),
    ("'%x %X %o %b'.format([255, 255, 8, 5])", "ff FF 10 101"),
    ("'%s'.format([[1, 'a', true, null]])", "[1, a, true, null]"),
    ("sets.contains([1, 2, 3], [3, 1])", True), ("sets.equivalent([1, 2], [2, 1, 1])", True),
    ("sets.intersects([1], [2])", False),
    ("bool('true')", True),
])
def test_strings_sets_format(expression: str, want: Any) -> None:
    assert ev(expression) == want


def test_string_errors() -> None:
    assert runtime_error("'hello'.charAt(6)") == "index out of range: 6"
    assert runtime_error("'hello'.substring(2, 1)") == "invalid substring range. start: 2, end: 1"
    assert runtime_error("'hello'.indexOf('l', 9)") == "index out of range: 9"
    assert runtime_error("'%d'.format(['x'])") == \
        "error during formatting: decimal clause can only be used on integers, was given string"
    assert runtime_error("'%s %s'.format(['x'])") == "index 1 out of range"


def test_compile_accepts_library_and_rejects_unknown_functions() -> None:
    for expression in ("sets.contains([1], [1])", "ip.isCanonical('::1')", "optional.of(1).hasValue()",
                       "quantity('1').isLessThan(quantity('2'))", "type(1) == int"):
        admission_cel.compile_expression(expression, NAMES)
    assert compile_error("object.foo()") == ("compilation failed: ERROR: <input>:1:11: undeclared reference to "
                                             "'foo' (in container '')\n | object.foo()\n | ..........^")
    assert compile_error("quantty('1')") == ("compilation failed: ERROR: <input>:1:8: undeclared reference to "
                                             "'quantty' (in container '')\n | quantty('1')\n | .......^")
    # Upstream's 1.33 base environment has neither the math extension nor strings' reverse.
    assert "undeclared reference to 'math'" in compile_error("math.greatest(1, 2)")
    assert "undeclared reference to 'reverse'" in compile_error("'abc'.reverse()")
    assert "undeclared reference to 'sets'" in compile_error("sets == 1")


def test_runtime_errors_keep_cel_go_wording() -> None:
    assert runtime_error("object.spec.missing", object={"spec": {}}) == "no such key: missing"
    assert runtime_error("1 + 'a'") == "no such overload"


class _Recorder:
    """An authorizer that allows what `allow` lists (verb, resource or path) and records the questions."""

    def __init__(self, allow: set[tuple[str, str]]) -> None:
        self.allow = allow
        self.asked: list[Attributes] = []

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        self.asked.append(attrs)
        if (attrs.verb, attrs.resource or attrs.path) in self.allow:
            return AuthzResult(Decision.ALLOW, f"allowed {attrs.user.name}")
        return AuthzResult(Decision.NO_OPINION, "no rule")


def _authz(expression: str, authorizer: _Recorder, user: str = "alice") -> Any:
    program = admission_cel.compile_expression(expression, NAMES)
    session = admission_cel.AuthorizerSession(authorizer, UserInfo(user, groups=("dev",)))
    activation = {"authorizer": cel_library.authorizer_value("apps", "deployments", "", "ns", "web")}
    return asyncio.run(admission_cel.evaluate_async(program, activation, session))


def test_authorizer_checks_ask_the_authorizer_as_the_requester() -> None:
    authz = _Recorder({("delete", "pods")})
    assert _authz("authorizer.group('').resource('pods').namespace('ns').name('p').check('delete').allowed()",
                  authz) is True
    [attrs] = authz.asked
    assert (attrs.user.name, attrs.verb, attrs.api_group, attrs.api_version, attrs.resource, attrs.namespace,
            attrs.name, attrs.resource_request) == ("alice", "delete", "", "*", "pods", "ns", "p", True)
    assert _authz("authorizer.group('').resource('pods').check('create').allowed()", authz) is False
    assert _authz("authorizer.group('').resource('pods').check('create').reason()", authz) == "no rule"
    assert _authz("authorizer.group('').resource('pods').check('delete').errored()", authz) is False


def test_authorizer_path_service_account_and_request_resource() -> None:
    authz = _Recorder({("get", "/healthz"), ("update", "deployments")})
    assert _authz("authorizer.path('/healthz').check('get').allowed()", authz) is True
    assert authz.asked[-1].path == "/healthz" and not authz.asked[-1].resource_request
    assert _authz("authorizer.serviceAccount('kube-system', 'bot').group('').resource('pods').check('get')"
                  ".reason()", authz) == "no rule"
    sa = authz.asked[-1].user
    assert (sa.name, sa.groups) == ("system:serviceaccount:kube-system:bot",
                                    ("system:serviceaccounts", "system:serviceaccounts:kube-system"))
    assert _authz("authorizer.requestResource.check('update').allowed()", authz) is True
    last = authz.asked[-1]
    assert (last.api_group, last.resource, last.namespace, last.name) == ("apps", "deployments", "ns", "web")


def test_authorizer_checks_that_depend_on_each_other_rerun_until_answered() -> None:
    authz = _Recorder({("get", "pods"), ("list", "pods")})
    expression = ("authorizer.group('').resource('pods').check('get').allowed() && "
                  "authorizer.group('').resource('pods').check('list').allowed() && "
                  "!authorizer.group('').resource('pods').check('watch').allowed()")
    assert _authz(expression, authz) is True
    assert sorted(a.verb for a in authz.asked) == ["get", "list", "watch"]


def test_authorizer_errors() -> None:
    authz = _Recorder(set())
    with pytest.raises(admission_cel.CELRuntimeError, match="^resource must not be empty$"):
        _authz("authorizer.group('').resource(' ').check('get').allowed()", authz)
    with pytest.raises(admission_cel.CELRuntimeError, match="^path must not be empty$"):
        _authz("authorizer.path('').check('get').allowed()", authz)
    with pytest.raises(admission_cel.CELRuntimeError, match="^Invalid service account name$"):
        _authz("authorizer.serviceAccount('ns', 'Bad_Name').group('').resource('pods').check('get').allowed()", authz)
    # Without an authorizer (a webhook matchCondition here) a check cannot be answered.
    assert runtime_error("authorizer.group('').resource('pods').check('get').allowed()") == "no such overload"
