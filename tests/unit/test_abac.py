"""ABAC policy files and decisions, as upstream's pkg/auth/authorizer/abac/abac_test.go."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubegate.authn.user import UserInfo
from kubegate.authz.abac import (
    ABACAuthorizer, Policy, PolicyLoadError, decode_line, load_policy_file, matches, parse_policies,
    subject_matches,
)
from kubegate.authz.types import Attributes, Decision, PolicyRule
from tests.fixtures import FIXTURES

ABAC = FIXTURES / "abac"
AUTHN = ("system:authenticated",)
V1 = '{"apiVersion":"abac.authorization.kubernetes.io/v1beta1","kind":"Policy","spec":%s}'


def load(tmp_path: Path, contents: str) -> ABACAuthorizer:
    f = tmp_path / "policy.jsonl"
    f.write_text(contents)
    return load_policy_file(str(f))


def attrs(user: UserInfo, verb: str = "", resource: str = "", ns: str = "", group: str = "", path: str = "",
          resource_request: bool | None = None) -> Attributes:
    rr = bool(ns or resource) if resource_request is None else resource_request
    return Attributes(user=user, verb=verb, namespace=ns, api_group=group, resource=resource, path=path,
                      resource_request=rr)


def u(name: str, *groups: str) -> UserInfo:
    return UserInfo(name=name, uid="uid", groups=groups or AUTHN)


# --- loading -------------------------------------------------------------------------------------

def test_empty_file(tmp_path: Path) -> None:
    assert load(tmp_path, "").policies == ()


def test_one_line_no_newline(tmp_path: Path) -> None:
    a = load(tmp_path, '{"user":"scheduler",  "readonly": true, "resource": "pods", "namespace":"ns1"}')
    assert a.policies == (Policy(user="scheduler", readonly=True, api_group="*", resource="pods", namespace="ns1"),)


def test_two_line_file(tmp_path: Path) -> None:
    a = load(tmp_path, '{"user":"scheduler",  "readonly": true, "resource": "pods"}\n'
                       '{"user":"scheduler",  "readonly": true, "resource": "services"}\n')
    assert [p.resource for p in a.policies] == ["pods", "services"]


def test_example_file_loads_and_decides() -> None:
    a = load_policy_file(str(ABAC / "example_policy_file.jsonl"))
    assert len(a.policies) == 11
    bob, alice, scheduler = u("bob"), u("alice"), u("scheduler")
    cases = [
        (attrs(bob, "get", "pods", "projectCaribou"), Decision.ALLOW),
        (attrs(bob, "list", "pods", "projectCaribou"), Decision.ALLOW),
        (attrs(bob, "watch", "deployments", "projectCaribou", "apps"), Decision.ALLOW),
        (attrs(bob, "create", "pods", "projectCaribou"), Decision.NO_OPINION),
        (attrs(bob, "get", "pods", "default"), Decision.NO_OPINION),
        (attrs(alice, "delete", "pods", "projectCaribou"), Decision.ALLOW),
        (attrs(alice, "create", "deployments", "projectCaribou", "apps"), Decision.ALLOW),
        (attrs(alice, "get", "pods", "other"), Decision.NO_OPINION),
        (attrs(scheduler, "create", "bindings", "ns1"), Decision.ALLOW),
        (attrs(scheduler, "get", "pods", "ns1"), Decision.ALLOW),
        (attrs(scheduler, "update", "pods", "ns1"), Decision.NO_OPINION),
        # apiGroup left out of the line: only the core group
        (attrs(scheduler, "get", "pods", "ns1", "example.com"), Decision.NO_OPINION),
        (attrs(u("kubelet"), "create", "events", "ns1"), Decision.ALLOW),
        (attrs(u("admin"), "delete", "nodes", group="", resource_request=True), Decision.ALLOW),
        (attrs(u("carol"), "get", path="/version"), Decision.ALLOW),
        (attrs(u("carol"), "post", path="/version"), Decision.NO_OPINION),
        (attrs(UserInfo("system:anonymous", groups=("system:unauthenticated",)), "get", path="/healthz"),
         Decision.ALLOW),
        (attrs(u("carol"), "get", "pods", "projectCaribou"), Decision.NO_OPINION),
    ]
    for a_, want in cases:
        assert a.decide(a_).decision is want, a_
    res = a.decide(attrs(u("carol"), "get", "pods", "ns1"))
    assert (res.decision, res.reason, res.error) == (Decision.NO_OPINION, "No policy matched.", None)


def test_legacy_v0_file_converts() -> None:
    policies, unversioned = parse_policies((ABAC / "legacy-v0" / "example_policy_file.jsonl").read_bytes(), "x")
    assert unversioned == 9
    assert policies[0] == Policy(user="admin", api_group="*", resource="*", namespace="*", non_resource_path="*")
    assert policies[1] == Policy(user="scheduler", readonly=True, api_group="*", resource="pods", namespace="*")
    assert policies[7] == Policy(user="alice", api_group="*", resource="*", namespace="projectCaribou")
    a = ABACAuthorizer(policies)
    assert a.decide(attrs(u("admin"), "get", path="/metrics")).allowed
    assert a.decide(attrs(u("bob"), "list", "pods", "projectCaribou", "apps")).allowed
    assert not a.decide(attrs(u("bob"), "create", "pods", "projectCaribou")).allowed
    assert not a.decide(attrs(u("alice"), "get", path="/version")).allowed


def test_comments_blank_lines_and_crlf_are_skipped() -> None:
    data = (b"\n   \n# a comment\n\t # indented comment\r\n"
            + (V1 % '{"user":"a","resource":"pods","namespace":"*"}').encode() + b"\r\n")
    policies, unversioned = parse_policies(data, "p")
    assert policies == [Policy(user="a", resource="pods", namespace="*")] and unversioned == 0


# --- upstream TestAuthorizeV0 / TestAuthorizeV1beta1 ----------------------------------------------

V0_FILE = """{                    "readonly": true, "resource": "events"   }
{"user":"scheduler", "readonly": true, "resource": "pods"     }
{"user":"scheduler",                   "resource": "bindings" }
{"user":"kubelet",   "readonly": true, "resource": "bindings" }
{"user":"kubelet",                     "resource": "events"   }
{"user":"alice",                                              "namespace": "projectCaribou"}
{"user":"bob",       "readonly": true,                        "namespace": "projectCaribou"}
"""

SCHED, ALICE, CHUCK = u("scheduler"), u("alice"), u("chuck")
ALLOW, NO = Decision.ALLOW, Decision.NO_OPINION

V0_CASES = [
    (SCHED, "list", "pods", "ns1", "", "", ALLOW),
    (SCHED, "list", "pods", "", "", "", ALLOW),
    (SCHED, "create", "pods", "ns1", "", "", NO),
    (SCHED, "create", "pods", "", "", "", NO),
    (SCHED, "get", "bindings", "ns1", "", "", ALLOW),
    (SCHED, "get", "bindings", "", "", "", ALLOW),
    (ALICE, "get", "pods", "projectCaribou", "", "", ALLOW),
    (ALICE, "get", "widgets", "projectCaribou", "", "", ALLOW),
    (ALICE, "get", "", "projectCaribou", "", "", ALLOW),
    (ALICE, "update", "pods", "projectCaribou", "", "", ALLOW),
    (ALICE, "update", "widgets", "projectCaribou", "", "", ALLOW),
    (ALICE, "update", "", "projectCaribou", "", "", ALLOW),
    (ALICE, "update", "foo", "projectCaribou", "bar", "", ALLOW),
    (ALICE, "get", "pods", "ns1", "", "", NO),
    (ALICE, "get", "widgets", "ns1", "", "", NO),
    (ALICE, "get", "", "ns1", "", "", NO),
    (CHUCK, "get", "events", "ns1", "", "", ALLOW),
    (CHUCK, "get", "events", "", "", "", ALLOW),
    (CHUCK, "update", "events", "ns1", "", "", NO),
    (CHUCK, "get", "pods", "ns1", "", "", NO),
    (CHUCK, "get", "floop", "ns1", "", "", NO),
    (CHUCK, "get", "", "", "", "/", NO),
]


@pytest.mark.parametrize("user,verb,resource,ns,group,path,want", V0_CASES)
def test_authorize_v0(tmp_path: Path, user: UserInfo, verb: str, resource: str, ns: str, group: str, path: str,
                      want: Decision) -> None:
    assert load(tmp_path, V0_FILE).decide(attrs(user, verb, resource, ns, group, path)).decision is want


V1_FILE = "\n\t\t # Comment line, after a blank line\n" + "\n".join("\t\t " + V1 % spec for spec in [
    '{"user":"*",         "readonly": true,                        "nonResourcePath": "/api"}',
    '{"user":"*",                                                  "nonResourcePath": "/custom"}',
    '{"user":"*",                                                  "nonResourcePath": "/root/*"}',
    '{"user":"noresource",                                         "nonResourcePath": "*"}',
    '{"user":"*",         "readonly": true, "resource": "events",   "namespace": "*"}',
    '{"user":"scheduler", "readonly": true, "resource": "pods",     "namespace": "*"}',
    '{"user":"scheduler",                   "resource": "bindings", "namespace": "*"}',
    '{"user":"kubelet",   "readonly": true, "resource": "bindings", "namespace": "*"}',
    '{"user":"kubelet",                     "resource": "events",   "namespace": "*"}',
    '{"user":"alice",                       "resource": "*",        "namespace": "projectCaribou"}',
    '{"user":"bob",       "readonly": true, "resource": "*",        "namespace": "projectCaribou"}',
    '{"user":"debbie",                      "resource": "pods",     "namespace": "projectCaribou"}',
    '{"user":"apigroupuser",                "resource": "*",        "namespace": "projectAnyGroup",   "apiGroup": "*"}',
    '{"user":"apigroupuser",                "resource": "*",        "namespace": "projectEmptyGroup", "apiGroup": "" }',
    '{"user":"apigroupuser",                "resource": "*",        "namespace": "projectXGroup",     "apiGroup": "x"}',
])

DEBBIE, NORES, APIG = u("debbie"), u("noresource"), u("apigroupuser")

V1_CASES = V0_CASES[:12] + V0_CASES[13:21] + [
    (DEBBIE, "update", "pods", "projectCaribou", "", "", ALLOW),
    (CHUCK, "get", "", "", "", "/", NO),
    (CHUCK, "get", "", "", "", "/api", ALLOW),
    (CHUCK, "create", "", "", "", "/api", NO),
    (CHUCK, "update", "", "", "", "/custom", ALLOW),
    (CHUCK, "get", "", "", "", "/root", NO),
    (CHUCK, "get", "", "", "", "/root/", ALLOW),
    (CHUCK, "get", "", "", "", "/root/test/1/2/3", ALLOW),
    (NORES, "get", "", "", "", "", ALLOW),
    (NORES, "get", "", "", "", "/", ALLOW),
    (NORES, "get", "", "", "", "/foo/bar/baz", ALLOW),
    (NORES, "get", "", "bar", "", "/", NO),
    (NORES, "get", "foo", "bar", "", "/foo/bar/baz", NO),
    (APIG, "get", "foo", "projectAnyGroup", "x", "", ALLOW),
    (APIG, "get", "foo", "projectEmptyGroup", "x", "", NO),
    (APIG, "get", "foo", "projectXGroup", "x", "", ALLOW),
]


@pytest.mark.parametrize("user,verb,resource,ns,group,path,want", V1_CASES)
def test_authorize_v1beta1(tmp_path: Path, user: UserInfo, verb: str, resource: str, ns: str, group: str,
                           path: str, want: Decision) -> None:
    assert load(tmp_path, V1_FILE).decide(attrs(user, verb, resource, ns, group, path)).decision is want


# --- upstream TestRulesFor ---------------------------------------------------------------------------

RULES_FILE = """
{                    "readonly": true, "resource": "events"   }
{"user":"scheduler", "readonly": true, "resource": "pods"     }
{"user":"scheduler",                   "resource": "bindings" }
{"user":"kubelet",   "readonly": true, "resource": "pods"     }
{"user":"kubelet",                     "resource": "events"   }
{"user":"alice",                                              "namespace": "projectCaribou"}
{"user":"bob",       "readonly": true,                        "namespace": "projectCaribou"}
{"user":"bob",       "readonly": true,                                                     "nonResourcePath": "*"}
{"group":"a",                          "resource": "bindings" }
{"group":"b",        "readonly": true,                                                     "nonResourcePath": "*"}
"""
RO = ("get", "list", "watch")


def rr(verbs: tuple[str, ...], resource: str) -> PolicyRule:
    return PolicyRule(verbs=verbs, api_groups=("*",), resources=(resource,))


NR = PolicyRule(verbs=RO, non_resource_urls=("*",))

RULES_CASES = [
    (u("scheduler"), "ns1", [rr(RO, "events"), rr(RO, "pods"), rr(("*",), "bindings")]),
    (u("kubelet", "a", "b"), "ns1", [rr(RO, "pods"), rr(("*",), "events"), rr(("*",), "bindings"), rr(RO, "*"), NR]),
    (u("alice"), "projectCaribou", [rr(RO, "events"), rr(("*",), "*")]),
    (u("bob"), "projectCaribou", [rr(RO, "events"), rr(RO, "*"), rr(RO, "*"), NR]),
    (u("chuck", "a", "b"), "ns1", [rr(("*",), "bindings"), rr(RO, "*"), NR]),
]


@pytest.mark.parametrize("user,ns,want", RULES_CASES)
def test_rules_for(tmp_path: Path, user: UserInfo, ns: str, want: list[PolicyRule]) -> None:
    rules = load(tmp_path, RULES_FILE).rules_for(user, ns)
    assert list(rules.rules) == want
    assert not rules.incomplete and rules.errors == ()


# --- upstream TestSubjectMatches / TestPolicy ---------------------------------------------------------

ANON = UserInfo("system:anonymous", groups=("system:unauthenticated",))


def v0(**spec: object) -> Policy:
    return decode_line(json.dumps(spec).encode())[0]


def v1(**spec: object) -> Policy:
    return decode_line((V1 % json.dumps(spec)).encode())[0]


SUBJECT_CASES = [
    (ANON, {}, False), (ANON, {"user": "*"}, False), (ANON, {"group": "*"}, False),
    (u("Foo"), {}, "v0"), (u("Foo", "a", "b", "system:authenticated"), {}, "v0"),
    (ANON, {"user": "Foo"}, False), (u("Bar"), {"user": "Foo"}, False), (u("foo"), {"user": "Foo"}, False),
    (u("FooBar"), {"user": "Foo"}, False), (u("Foo"), {"user": "Foo"}, True),
    (ANON, {"group": "Foo"}, False), (u("FooBar", "B", "system:authenticated"), {"group": "A"}, False),
    (u("Foo", "A", "B", "C", "system:authenticated"), {"group": "b"}, False),
    (u("Foo", "A", "BBB", "C", "system:authenticated"), {"group": "B"}, False),
    (u("Foo", "A", "B", "C", "system:authenticated"), {"group": "B"}, True),
    (u("Bar", "A", "B", "C", "system:authenticated"), {"user": "Foo", "group": "B"}, False),
    (u("Foo", "A", "B", "C", "system:authenticated"), {"user": "Foo", "group": "D"}, False),
    (u("Foo", "A", "B", "C", "system:authenticated"), {"user": "Foo", "group": "B"}, True),
]


@pytest.mark.parametrize("user,spec,want", SUBJECT_CASES)
def test_subject_matches(user: UserInfo, spec: dict[str, str], want: bool | str) -> None:
    # "v0": an empty v0 policy matches every authenticated user, an empty v1beta1 one nobody.
    assert subject_matches(v0(**spec), user) is bool(want)
    assert subject_matches(v1(**spec), user) is (want is True)


FOO = u("foo")
POLICY_CASES = [
    (v0(readonly=True), attrs(FOO, "create", resource_request=False), False),
    (v0(user="foo"), attrs(u("bar"), resource_request=False), False),
    (v0(resource="foo"), attrs(FOO, resource="bar"), False),
    (v0(user="foo", resource="foo", namespace="foo"), attrs(FOO, resource="foo", ns="foo"), True),
    (v0(), attrs(FOO, resource_request=True), True),
    (v0(readonly=True), attrs(FOO, "get", resource_request=False), True),
    (v0(user="foo"), attrs(FOO, resource_request=False), True),
    (v0(resource="foo"), attrs(FOO, resource="foo"), True),
    (v1(), attrs(FOO, resource_request=True), False),
    (v1(user="foo"), attrs(u("bar"), resource_request=True), False),
    (v1(user="*", readonly=True), attrs(FOO, resource_request=True), False),
    (v1(user="*", resource="foo"), attrs(FOO, resource="bar"), False),
    (v1(user="foo", namespace="barr", resource="baz"), attrs(FOO, resource="baz", ns="bar"), False),
    (v1(user="*", nonResourcePath="/api"), attrs(FOO, path="/api2"), False),
    (v1(user="*", nonResourcePath="/api/*"), attrs(FOO, path="/api2/foo"), False),
    (v1(user="foo"), attrs(FOO, resource_request=True), True),
    (v1(user="*"), attrs(FOO, resource_request=True), True),
    (v1(group="bar"), attrs(u("foo", "bar", "system:authenticated"), resource_request=True), True),
    (v1(group="*"), attrs(u("foo", "bar", "system:authenticated"), resource_request=True), True),
    (v1(user="*", readonly=True), attrs(FOO, "get", resource_request=True), True),
    (v1(user="*", resource="foo"), attrs(FOO, resource="foo"), True),
    (v1(user="foo", namespace="bar", resource="baz"), attrs(FOO, resource="baz", ns="bar"), True),
    (v1(user="*", nonResourcePath="/api"), attrs(FOO, path="/api"), True),
    (v1(user="*", nonResourcePath="*"), attrs(FOO, path="/api"), True),
    (v1(user="*", nonResourcePath="/api/*"), attrs(FOO, path="/api/foo"), True),
]


@pytest.mark.parametrize("policy,attributes,want", POLICY_CASES)
def test_policy(policy: Policy, attributes: Attributes, want: bool) -> None:
    assert matches(policy, attributes) is want


def test_subresource_is_ignored() -> None:
    p = v1(user="alice", namespace="ns", resource="pods")
    assert matches(p, Attributes(user=u("alice"), verb="get", namespace="ns", resource="pods", subresource="log",
                                 resource_request=True))


def test_versioned_v0_and_yaml_lines() -> None:
    assert decode_line(b'{"apiVersion":"abac.authorization.kubernetes.io/v0","kind":"Policy","user":"x"}') == (
        Policy(user="x", api_group="*", resource="*", namespace="*", non_resource_path="*"), True)
    # upstream's universal decoder reads a non-JSON line as YAML
    assert decode_line(b"user: x\nresource: pods") == (
        Policy(user="x", api_group="*", resource="pods", namespace="*"), False)
    # a null document is an empty v0 policy: everything for every authenticated user
    assert decode_line(b"null")[0] == Policy(group="system:authenticated", api_group="*", resource="*",
                                              namespace="*", non_resource_path="*")


# --- malformed lines: start-up fails with the line number ---------------------------------------------

TYPE_META = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
             'Kind string "json:\\"kind,omitempty\\"" }')
MALFORMED = [
    ('{"user":"a"', "couldn't get version/kind; json parse error: unexpected end of JSON input"),
    ('{user: a}', "couldn't get version/kind; json parse error: invalid character 'u' looking for beginning "
                  "of object key string"),
    ('{"user":"a"} x', "couldn't get version/kind; json parse error: invalid character 'x' after top-level value"),
    (V1 % '{"readonly":"yes"}', "json: cannot unmarshal string into Go struct field PolicySpec.spec.readonly "
                                "of type bool"),
    (V1 % '"alice"', "json: cannot unmarshal string into Go struct field Policy.spec of type v1beta1.PolicySpec"),
    ('{"user": 5}', "json: cannot unmarshal number into Go struct field Policy.user of type string"),
    ('{"apiVersion": 1}', "couldn't get version/kind; json parse error: json: cannot unmarshal number into Go "
                          "struct field .apiVersion of type string"),
    ('{"apiVersion":"a/b/c","kind":"Policy"}', "unexpected GroupVersion string: a/b/c"),
    ('{"apiVersion":"abac.authorization.kubernetes.io/v2","kind":"Policy"}',
     'no kind "Policy" is registered for version "abac.authorization.kubernetes.io/v2" in scheme '
     '"k8s.io/kubernetes/pkg/apis/abac/register.go:33"'),
    ('{"apiVersion":"abac.authorization.kubernetes.io/v1beta1","kind":"Rule","spec":{}}',
     'no kind "Rule" is registered for version "abac.authorization.kubernetes.io/v1beta1" in scheme '
     '"k8s.io/kubernetes/pkg/apis/abac/register.go:33"'),
    ('{"apiVersion":"abac.authorization.kubernetes.io/v1beta1","spec":{"user":"a"}}',
     "converting (v1beta1.Policy) to (v0.Policy): unknown conversion"),
    ("garbage", f"couldn't get version/kind; json parse error: json: cannot unmarshal string into Go value of "
                f"type {TYPE_META}"),
    ("[1, 2]", f"couldn't get version/kind; json parse error: json: cannot unmarshal array into Go value of "
               f"type {TYPE_META}"),
]


@pytest.mark.parametrize("line,err", MALFORMED)
def test_malformed_line_reports_line_number(tmp_path: Path, line: str, err: str) -> None:
    f = tmp_path / "policy.jsonl"
    f.write_text(f"# header\n\n{V1 % json.dumps({'user': 'ok', 'nonResourcePath': '*'})}\n{line}\n"
                 '{"user":"never-read"}\n')
    with pytest.raises(PolicyLoadError) as e:
        load_policy_file(str(f))
    assert str(e.value) == f"error reading policy file {f}, line 4: {line}: {err}"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match=r"^open .*/nope: no such file or directory$"):
        load_policy_file(str(tmp_path / "nope"))
    with pytest.raises(PolicyLoadError) as e:
        load_policy_file(str(tmp_path))
    assert str(e.value) == f"error reading policy file {tmp_path}: read {tmp_path}: is a directory"


def test_line_too_long(tmp_path: Path) -> None:
    f = tmp_path / "p"
    f.write_text('{"user":"' + "a" * 70000 + '"}\n')
    with pytest.raises(PolicyLoadError) as e:
        load_policy_file(str(f))
    assert str(e.value) == f"error reading policy file {f}: bufio.Scanner: token too long"
