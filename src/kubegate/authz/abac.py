"""ABAC: authorization from a policy file (upstream pkg/auth/authorizer/abac).

One policy per line, `abac.authorization.kubernetes.io/v1beta1` Policy objects or the legacy
unversioned (v0) form; the first line that matches allows, nothing matching is no opinion. Lines
are decoded the way upstream's universal decoder does it, so a malformed line stops start-up with
upstream's message: JSON lines (first character `{`) through Go's JSON decoder, anything else as
YAML, unknown apiVersion/kind falling back to v0 decoding."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from kubegate.api.gojson import GoStruct, syntax_error, unmarshal_type_error
from kubegate.authn.user import ALL_AUTHENTICATED, UserInfo
from kubegate.authz.types import Attributes, AuthzResult, Decision, PolicyRule, RuleSet

log = logging.getLogger("kubegate.authz.abac")

GROUP = "abac.authorization.kubernetes.io"
# Where upstream's abac Scheme is created; its NotRegisteredError names the scheme by it.
_SCHEME_NAME = "k8s.io/kubernetes/pkg/apis/abac/register.go:33"
# bufio.Scanner's default maximum token size: a longer line cannot be read at all.
_MAX_LINE = 64 * 1024
_READONLY_VERBS = ("get", "list", "watch")
NO_MATCH_REASON = "No policy matched."

# The Go types the decoder fills, for its type-mismatch messages.
_TYPE_META = GoStruct('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
                      'Kind string "json:\\"kind,omitempty\\"" }', "",
                      {"apiVersion": "string", "kind": "string"})
_V0 = GoStruct("v0.Policy", "Policy", {
    "apiVersion": "string", "kind": "string", "user": "string", "group": "string", "readonly": "bool",
    "resource": "string", "namespace": "string"})
_V1BETA1_SPEC = GoStruct("v1beta1.PolicySpec", "PolicySpec", {
    "user": "string", "group": "string", "readonly": "bool", "apiGroup": "string", "resource": "string",
    "namespace": "string", "nonResourcePath": "string"})
_V1BETA1 = GoStruct("v1beta1.Policy", "Policy", {"apiVersion": "string", "kind": "string", "spec": _V1BETA1_SPEC})


@dataclass(frozen=True)
class Policy:
    """The internal (converted) form of one policy line."""
    user: str = ""
    group: str = ""
    readonly: bool = False
    api_group: str = ""
    resource: str = ""
    namespace: str = ""
    non_resource_path: str = ""


class PolicyLoadError(Exception):
    """The policy file cannot be used; the message is upstream's policyLoadError text."""


class _LineError(Exception):
    pass


def load_policy_file(path: str) -> ABACAuthorizer:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        # Go opens a directory fine and fails on the first read.
        raise PolicyLoadError(f"error reading policy file {path}: read {path}: is a directory") from None
    except OSError as e:
        raise PolicyLoadError(f"open {path}: {os.strerror(e.errno or 0).lower()}") from None
    policies, unversioned = parse_policies(data, path)
    if unversioned:
        log.warning("Policy file %s contained unversioned rules. See docs/admin/authorization.md#abac-mode "
                    "for ABAC file format details.", path)
    return ABACAuthorizer(policies)


def parse_policies(data: bytes, path: str) -> tuple[list[Policy], int]:
    """The policies of a file's contents and how many lines were unversioned (v0)."""
    policies: list[Policy] = []
    unversioned = 0
    for number, line in enumerate(_scan_lines(data), start=1):
        if len(line) >= _MAX_LINE:
            raise PolicyLoadError(f"error reading policy file {path}: bufio.Scanner: token too long")
        trimmed = line.decode("utf-8", "replace").strip()
        if not trimmed or trimmed.startswith("#"):
            continue
        try:
            policy, versioned = decode_line(line)
        except _LineError as e:
            raise PolicyLoadError(f"error reading policy file {path}, line {number}: "
                                  f"{line.decode('utf-8', 'replace')}: {e}") from None
        unversioned += not versioned
        policies.append(policy)
    return policies, unversioned


def _scan_lines(data: bytes) -> list[bytes]:
    """bufio.ScanLines: split at \\n, drop one trailing \\r, no empty token after a final newline."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def decode_line(line: bytes) -> tuple[Policy, bool]:
    """One line as upstream's NewFromFile decodes it: the Policy and whether it was versioned."""
    value = _json_value(line)
    group, version, kind = _interpret(value)
    if kind and version and group == GROUP and kind == "Policy" and version in ("v1beta1", "v0"):
        return _decode_as(value, version), True
    # Missing or unregistered version/kind: upstream decodes the line into a v0 Policy, whose
    # type fills in whatever the line left out.
    kind = kind or "Policy"
    if not version and (not group or group == GROUP):
        group, version = GROUP, "v0"
    if not version:
        raise _LineError(f"Object 'apiVersion' is missing in '{line.decode('utf-8', 'replace')}'")
    if (group, version, kind) == (GROUP, "v0", "Policy"):
        return _decode_as(value, "v0"), False
    if (group, version, kind) == (GROUP, "v1beta1", "Policy"):
        _check(value, _V1BETA1)
        raise _LineError("converting (v1beta1.Policy) to (v0.Policy): unknown conversion")
    gv = f"{group}/{version}" if group else version
    raise _LineError(f"no kind {json.dumps(kind)} is registered for version {json.dumps(gv)} "
                     f"in scheme {json.dumps(_SCHEME_NAME)}")


def _json_value(line: bytes) -> Any:
    if line.lstrip().startswith(b"{"):
        err = syntax_error(line)
        if err:
            raise _LineError(f"couldn't get version/kind; json parse error: {err}")
        return json.loads(line, object_pairs_hook=_go_object)
    # Not JSON: the YAML decoder gets it (a YAML mapping is then a policy like any other).
    try:
        return _yaml_json(yaml.load(line, Loader=_YAMLLoader))
    except yaml.MarkedYAMLError as e:
        where = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        raise _LineError(f"yaml: {where}{e.problem}") from None
    except yaml.YAMLError as e:
        raise _LineError(f"yaml: {e}") from None


def _go_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Go decodes a repeated key into the same field: null leaves it alone, objects merge."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        old = out.get(key)
        if value is None and key in out:
            continue
        out[key] = _go_object([*old.items(), *value.items()]) if isinstance(old, dict) and isinstance(
            value, dict) else value
    return out


class _YAMLLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it into JSON: timestamps stay strings."""


_YAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _yaml_json(v: Any) -> Any:
    if isinstance(v, dict):
        return {_yaml_key(k): _yaml_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_yaml_json(x) for x in v]
    return v


def _yaml_key(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    return "null" if k is None else str(k)


def _interpret(value: Any) -> tuple[str, str, str]:
    """apimachinery's SimpleMetaFactory.Interpret: (group, version, kind) from apiVersion/kind,
    read with encoding/json (case-insensitive keys, last one wins)."""
    err = unmarshal_type_error(value, _TYPE_META, fold_case=True)
    if err:
        raise _LineError(f"couldn't get version/kind; json parse error: {err}")
    api_version = kind = ""
    for key, v in (value.items() if isinstance(value, dict) else ()):
        if v is None:
            continue
        if key.lower() == "apiversion":
            api_version = v
        elif key.lower() == "kind":
            kind = v
    if api_version in ("", "/"):
        return "", "", kind
    if api_version.count("/") == 0:
        return "", api_version, kind
    if api_version.count("/") == 1:
        group, version = api_version.split("/")
        return group, version, kind
    raise _LineError(f"unexpected GroupVersion string: {api_version}")


def _check(value: Any, struct: GoStruct) -> None:
    err = unmarshal_type_error(value, struct)
    if err:
        raise _LineError(err)


def _decode_as(value: Any, version: str) -> Policy:
    obj = value or {}
    if version == "v1beta1":
        _check(value, _V1BETA1)
        return _from_v1beta1(obj.get("spec") or {})
    _check(value, _V0)
    return _from_v0(obj)


def _str(d: dict[str, Any], key: str) -> str:
    return d.get(key) or ""


def _from_v1beta1(spec: dict[str, Any]) -> Policy:
    user, group = _str(spec, "user"), _str(spec, "group")
    # In v1beta1, * user or group maps to all authenticated subjects.
    if user == "*" or group == "*":
        user, group = "", ALL_AUTHENTICATED
    return Policy(user=user, group=group, readonly=bool(spec.get("readonly")), api_group=_str(spec, "apiGroup"),
                  resource=_str(spec, "resource"), namespace=_str(spec, "namespace"),
                  non_resource_path=_str(spec, "nonResourcePath"))


def _from_v0(obj: dict[str, Any]) -> Policy:
    user, group = _str(obj, "user"), _str(obj, "group")
    namespace, resource = _str(obj, "namespace"), _str(obj, "resource")
    # v0: no subject, or a * subject, is every authenticated subject; an empty namespace or
    # resource is all of them; every rule covers all API groups; and a rule with neither
    # namespace nor resource covers every non-resource path too.
    if (not user and not group) or user == "*" or group == "*":
        user, group = "", ALL_AUTHENTICATED
    return Policy(user=user, group=group, readonly=bool(obj.get("readonly")), api_group="*",
                  resource=resource or "*", namespace=namespace or "*",
                  non_resource_path="*" if not namespace and not resource else "")


def subject_matches(p: Policy, user: UserInfo) -> bool:
    """A policy with neither user nor group matches nobody; with both, both must match."""
    matched = False
    if p.user:
        if p.user != "*" and p.user != user.name:
            return False
        matched = True
    if p.group:
        if p.group != "*" and p.group not in user.groups:
            return False
        matched = True
    return matched


def _verb_matches(p: Policy, attrs: Attributes) -> bool:
    return attrs.verb in _READONLY_VERBS or not p.readonly


def _resource_matches(p: Policy, attrs: Attributes) -> bool:
    # The subresource is not part of ABAC's vocabulary: pods/log is covered by a pods rule.
    return (attrs.resource_request
            and p.namespace in ("*", attrs.namespace)
            and p.resource in ("*", attrs.resource)
            and p.api_group in ("*", attrs.api_group))


def _non_resource_matches(p: Policy, attrs: Attributes) -> bool:
    if attrs.resource_request:
        return False
    path = p.non_resource_path
    return (path == "*" or path == attrs.path
            or (path.endswith("*") and attrs.path.startswith(path.rstrip("*"))))


def matches(p: Policy, attrs: Attributes) -> bool:
    return (subject_matches(p, attrs.user) and _verb_matches(p, attrs)
            and (_resource_matches(p, attrs) or _non_resource_matches(p, attrs)))


def _verbs(readonly: bool) -> tuple[str, ...]:
    return _READONLY_VERBS if readonly else ("*",)


class ABACAuthorizer:
    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = tuple(policies)

    def decide(self, attrs: Attributes) -> AuthzResult:
        for p in self.policies:
            if matches(p, attrs):
                return AuthzResult(Decision.ALLOW)
        return AuthzResult(Decision.NO_OPINION, NO_MATCH_REASON)

    async def authorize(self, attrs: Attributes) -> AuthzResult:
        return self.decide(attrs)

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """Upstream's RulesFor: every line for the subject in the namespace (or `*`), as a resource
        rule when it names a resource and a non-resource rule when it names a path."""
        resource: list[PolicyRule] = []
        non_resource: list[PolicyRule] = []
        for p in self.policies:
            if not subject_matches(p, user) or p.namespace not in ("*", namespace):
                continue
            if p.resource:
                resource.append(PolicyRule(verbs=_verbs(p.readonly), api_groups=(p.api_group,),
                                           resources=(p.resource,)))
            if p.non_resource_path:
                non_resource.append(PolicyRule(verbs=_verbs(p.readonly), non_resource_urls=(p.non_resource_path,)))
        return RuleSet(tuple(resource + non_resource))
