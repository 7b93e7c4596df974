"""Secret validation per type (upstream ValidateSecret/ValidateSecretUpdate) beyond the goldens in
test_validation.py: every type's required keys, key names, the 1 MiB total, stringData overlay."""
from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from kubegate.api.defaults import apply_defaults
from kubegate.api.resources import RESOURCES
from kubegate.api.validation import validate

SECRET = next(r for r in RESOURCES if r.kind == "Secret")


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("namespace", "default")
    apply_defaults(SECRET, obj)
    return [f"{c.field}: {c.message}" for c in validate(SECRET, obj, old)]


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def secret(stype: str = "", **data: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "s"}, "data": {k.replace("_", "."): b64(v) for k, v in data.items()}}
    if stype:
        obj["type"] = stype
    return obj


@pytest.mark.parametrize("stype,data,want", [
    ("Opaque", {}, []),
    ("", {}, []),
    ("example.com/custom", {}, []),
    ("bootstrap.kubernetes.io/token", {}, []),  # upstream checks nothing for this type here
    ("kubernetes.io/dockercfg", {}, ["data[.dockercfg]: Required value"]),
    ("kubernetes.io/dockerconfigjson", {}, ["data[.dockerconfigjson]: Required value"]),
    ("kubernetes.io/basic-auth", {"password": ""}, []),
    ("kubernetes.io/basic-auth", {}, ["data[username]: Required value", "data[password]: Required value"]),
    ("kubernetes.io/ssh-auth", {"ssh-privatekey": ""}, ["data[ssh-privatekey]: Required value"]),
    ("kubernetes.io/tls", {"tls_crt": "c"}, ["data[tls.key]: Required value"]),
    ("kubernetes.io/tls", {"tls_crt": "c", "tls_key": "k"}, []),
])
def test_per_type_required_keys(stype: str, data: dict[str, str], want: list[str]) -> None:
    assert causes(secret(stype, **data)) == want


def test_dockercfg_must_be_a_json_object() -> None:
    obj = {"metadata": {"name": "s"}, "type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64("[1]")}}
    (msg,) = causes(obj)
    assert msg.startswith('data[.dockercfg]: Invalid value: "<secret contents redacted>": json: cannot unmarshal')


def test_string_data_satisfies_type_and_counts_toward_the_limit() -> None:
    obj = {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}
    assert causes(obj) == []
    half = "x" * (512 * 1024)
    big = {"metadata": {"name": "s"}, "data": {"a": b64(half)}, "stringData": {"b": half + "x"}}
    assert causes(big) == ["data: Too long: may not be more than 1048576 bytes"]
    assert causes({"metadata": {"name": "s"}, "data": {"a": b64(half)}, "stringData": {"b": half}}) == []


@pytest.mark.parametrize("key,ok", [("a.b-c_D", True), (".dotfile", True), ("a/b", False), ("..", False),
                                    ("", False), ("a b", False)])
def test_key_names(key: str, ok: bool) -> None:
    got = causes({"metadata": {"name": "s"}, "data": {key: b64("v")}})
    assert (got == []) is ok
    if not ok:
        assert got[0].startswith(f"data[{key}]: Invalid value: \"{key}\"")


def test_immutable_and_type_on_update() -> None:
    old = secret("Opaque", k="v")
    old["immutable"] = True
    old["metadata"].update(namespace="default", resourceVersion="1", uid="u", creationTimestamp="2026-01-01T00:00:00Z")
    same = copy.deepcopy(old)
    assert causes(same, old) == []
    changed = copy.deepcopy(old)
    changed["stringData"] = {"k": "w"}
    assert causes(changed, old) == ["data: Forbidden: field is immutable when `immutable` is set"]
    retyped = copy.deepcopy(old)
    retyped["type"] = "kubernetes.io/tls"
    retyped["data"].update({"tls.crt": b64("c"), "tls.key": b64("k")})
    got = causes(retyped, old)
    assert 'type: Invalid value: "kubernetes.io/tls": field is immutable' in got
