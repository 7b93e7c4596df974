"""Label and field selectors: upstream's parse errors, canonical strings and matching."""
from __future__ import annotations

import json
from typing import Any

import pytest

from kubegate.api import resources as R
from kubegate.api.errors import StatusError
from kubegate.api.resources import Resource
from kubegate.api.selectors import (
    SelectorError, format_label_selector, label_selector_from_object, parse_field_selector, parse_label_selector,
    parse_raw_field_selector, validate_label_selector,
)

from tests.fixtures import GOLDENS
QNAME_REGEX = ("(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
               "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def golden_status(name: str) -> dict[str, Any]:
    return json.loads((GOLDENS / name).read_text())["response"]["body"]


def res(group: str, plural: str) -> Resource:
    r = R.lookup(group, "v1", plural)
    assert r is not None
    return r


def label_error(s: str) -> str:
    with pytest.raises(StatusError) as e:
        parse_label_selector(s)
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    return e.value.message


def field_error(resource: Resource, s: str) -> str:
    with pytest.raises(StatusError) as e:
        parse_field_selector(resource, s)
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    return e.value.message


def test_invalid_label_selector_golden() -> None:
    want = golden_status("errors/400-invalid-label-selector.json")
    with pytest.raises(StatusError) as e:
        parse_label_selector("a b c")
    assert e.value.status() == want


def test_unsupported_field_selector_golden() -> None:
    want = golden_status("errors/400-unsupported-field-selector.json")
    with pytest.raises(StatusError) as e:
        parse_field_selector(res("", "configmaps"), "data.k=v")
    assert e.value.status() == want


@pytest.mark.parametrize("raw,canonical", [
    ("", ""),
    ("a=b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("  env in (prod, dev) , tier notin (fe)", "env in (dev,prod),tier notin (fe)"),
    ("!b,a", "a,!b"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ("a=", "a="),
    ("n>3,m<2", "m<2,n>3"),
    ("in in (in)", "in in (in)"),
])
def test_label_selector_canonical_form(raw: str, canonical: str) -> None:
    assert str(parse_label_selector(raw)) == canonical


@pytest.mark.parametrize("raw,message", [
    ("a b c", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a gt 3", "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt"),
    ("app:monolith", 'unable to parse requirement: <nil>: Invalid value: "app:monolith": name part must consist '
                     "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                     "character " + QNAME_REGEX),
    ("a=b*c", 'unable to parse requirement: values[0][a]: Invalid value: "b*c": a valid label must be an empty '
              "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
              "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
              "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("a>b", 'unable to parse requirement: values[0]: Invalid value: "b": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("a/b/c=d", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must consist of '
                "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                + QNAME_REGEX + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
])
def test_label_selector_errors(raw: str, message: str) -> None:
    assert label_error(raw) == message


def test_label_selector_matching() -> None:
    sel = parse_label_selector("env in (prod,dev),tier!=fe,team,!legacy")
    assert sel.matches({"env": "prod", "tier": "be", "team": "x"})
    assert sel.matches({"env": "dev", "team": ""})
    assert not sel.matches({"env": "qa", "team": "x"})
    assert not sel.matches({"env": "prod", "tier": "fe", "team": "x"})
    assert not sel.matches({"env": "prod", "team": "x", "legacy": "true"})
    assert not sel.matches({"env": "prod"})
    assert parse_label_selector("").matches({}) and parse_label_selector("").empty()
    assert parse_label_selector("a notin (x)").matches({})
    assert parse_label_selector("n>3").matches({"n": "4"})
    assert not parse_label_selector("n>3").matches({"n": "three"})
    assert parse_label_selector("a=b,c=d").requires_exact_match("c") == "d"


def test_label_selector_objects() -> None:
    sel = label_selector_from_object({"matchLabels": {"app": "web", "tier": "fe"},
                                      "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]},
                                                           {"key": "old", "operator": "DoesNotExist"},
                                                           {"key": "team", "operator": "Exists"}]})
    assert str(sel) == "app=web,env in (a,b),!old,team,tier=fe"
    assert sel.matches({"app": "web", "tier": "fe", "env": "a", "team": "t"})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "a"})
    nothing = label_selector_from_object(None)
    assert not nothing.matches({}) and str(nothing) == ""
    everything = label_selector_from_object({})
    assert everything.matches({"x": "y"}) and everything.empty()
    with pytest.raises(SelectorError, match='^"Maybe" is not a valid label selector operator$'):
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})
    with pytest.raises(SelectorError) as e:
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    assert str(e.value) == "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    with pytest.raises(SelectorError) as e:
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]})
    assert str(e.value) == ('values: Invalid value: []string{"x", "y"}: '
                            "values set must be empty for exists and does not exist")
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchLabels": {"app": "web"}}) == "app=web"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}) == "<error>"


def test_validate_label_selector() -> None:
    causes = validate_label_selector({
        "matchLabels": {"bad key!": "ok"},
        "matchExpressions": [{"key": "a", "operator": "In"},
                             {"key": "b", "operator": "Exists", "values": ["x"]},
                             {"key": "c", "operator": "Near", "values": ["bad value!"]}]}, "spec.selector")
    got = [(c.reason, c.field, c.message) for c in causes]
    assert got == [
        ("FieldValueInvalid", "spec.selector.matchLabels",
         'Invalid value: "bad key!": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', '
         "and must start and end with an alphanumeric character " + QNAME_REGEX),
        ("FieldValueRequired", "spec.selector.matchExpressions[0].values",
         "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        ("FieldValueForbidden", "spec.selector.matchExpressions[1].values",
         "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        ("FieldValueInvalid", "spec.selector.matchExpressions[2].operator",
         'Invalid value: "Near": not a valid selector operator'),
        ("FieldValueInvalid", "spec.selector.matchExpressions[2].values[0]",
         'Invalid value: "bad value!": a valid label must be an empty string or consist of alphanumeric '
         "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
         "or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ]
    assert validate_label_selector(None, "x") == []


def pod(name: str, node: str = "", phase: str = "Pending", host_network: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node} if node else {}
    if host_network is not None:
        spec["hostNetwork"] = host_network
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec, "status": {"phase": phase}}


def test_pod_field_selectors() -> None:
    pods = res("", "pods")
    sel = parse_field_selector(pods, "spec.nodeName=n1,status.phase!=Failed")
    assert str(sel) == "spec.nodeName=n1,status.phase!=Failed"
    assert sel.matches(pod("a", "n1", "Running"))
    assert not sel.matches(pod("a", "n1", "Failed"))
    assert not sel.matches(pod("a", "n2"))
    # old clients' spec.host is converted to spec.nodeName
    assert str(parse_field_selector(pods, "spec.host=n1")) == "spec.nodeName=n1"
    assert parse_field_selector(pods, "spec.nodeName=").matches(pod("unscheduled"))
    assert parse_field_selector(pods, "spec.hostNetwork=false").matches(pod("a"))
    assert parse_field_selector(pods, "spec.hostNetwork==true").matches(pod("a", host_network=True))
    assert field_error(pods, "spec.containers=x") == "field label not supported: spec.containers"


def test_field_selectors_for_other_kinds() -> None:
    nodes = res("", "nodes")
    assert parse_field_selector(nodes, "spec.unschedulable=true").matches(
        {"metadata": {"name": "n"}, "spec": {"unschedulable": True}})
    assert field_error(nodes, "metadata.namespace=x") == "field label not supported: metadata.namespace"
    secrets = res("", "secrets")
    sel = parse_field_selector(secrets, "type=kubernetes.io/service-account-token")
    assert sel.matches({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"})
    assert not sel.matches({"metadata": {"name": "s"}, "type": "Opaque"})
    ns = res("", "namespaces")
    assert parse_field_selector(ns, "status.phase=Terminating").matches(
        {"metadata": {"name": "x"}, "status": {"phase": "Terminating"}})
    csrs = res("certificates.k8s.io", "certificatesigningrequests")
    assert parse_field_selector(csrs, "spec.signerName=kubernetes.io/kube-apiserver-client").matches(
        {"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client"}})
    rs = res("apps", "replicasets")
    assert parse_field_selector(rs, "status.replicas=0").matches({"metadata": {"name": "r"}, "status": {}})
    assert field_error(rs, "spec.replicas=1") == \
        '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'
    # cluster-scoped kinds have no metadata.namespace value, so only the empty value matches
    roles = res("rbac.authorization.k8s.io", "clusterroles")
    assert not parse_field_selector(roles, "metadata.namespace=x").matches({"metadata": {"name": "admin"}})
    assert parse_field_selector(roles, "metadata.namespace=").matches({"metadata": {"name": "admin"}})


def test_event_field_selectors_core_and_events_v1() -> None:
    core_event = {"metadata": {"name": "e", "namespace": "ns"}, "reason": "Killing", "type": "Normal",
                  "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "ns"},
                  "reportingController": "kubelet", "source": {}}
    sel = parse_field_selector(res("", "events"), "involvedObject.kind=Pod,involvedObject.name=web-0,source=kubelet")
    assert sel.matches(core_event)
    v1 = parse_field_selector(res("events.k8s.io", "events"), "regarding.name=web-0,reportingController=kubelet")
    assert str(v1) == "involvedObject.name=web-0,reportingComponent=kubelet"
    assert v1.matches(core_event)
    assert v1.matches({"metadata": {"name": "e", "namespace": "ns"}, "regarding": {"name": "web-0"},
                       "reportingController": "kubelet", "note": "x"})
    assert field_error(res("events.k8s.io", "events"), "involvedObject.name=x") == \
        "field label not supported: involvedObject.name"


def test_field_selector_syntax_and_exact_name() -> None:
    cms = res("", "configmaps")
    sel = parse_field_selector(cms, "metadata.name=e-cm")
    assert sel.exact_name() == "e-cm"
    assert sel.matches({"metadata": {"name": "e-cm", "namespace": "golden-watch"}})
    assert not sel.matches({"metadata": {"name": "other"}})
    assert parse_field_selector(cms, "metadata.name!=e-cm").exact_name() is None
    assert parse_raw_field_selector("metadata.name=a/b").exact_name() is None
    assert parse_raw_field_selector("spec.anything=x,metadata.name==n").exact_name() == "n"
    escaped = parse_field_selector(cms, r"metadata.name=a\,b\=c")
    assert escaped.terms[0].value == "a,b=c" and str(escaped) == r"metadata.name=a\,b\=c"
    # terms are sorted by their raw text, as upstream does
    assert str(parse_field_selector(cms, "metadata.namespace=x,metadata.name=y")) == \
        "metadata.name=y,metadata.namespace=x"
    assert parse_field_selector(cms, "").matches({}) and parse_field_selector(cms, "").empty()
    assert field_error(cms, "metadata.name") == "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    assert field_error(cms, r"metadata.name=a\b") == "invalid field selector: invalid escape sequence: \\b"
    assert field_error(cms, "metadata.name=a=b") == "invalid field selector: unescaped character in value: 61"
