"""Security contexts, seccomp and AppArmor: upstream's validation messages (pkg/apis/core/validation) and the
pod strategy's AppArmor annotation <-> field sync on create."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kubegate.api.defaults import apparmor_version_skew, apply_defaults, prepare_for_create
from kubegate.api.resources import RESOURCES
from kubegate.api.validation import validate

POD = next(r for r in RESOURCES if r.group == "" and r.kind == "Pod")
DEPLOY = next(r for r in RESOURCES if r.group == "apps" and r.kind == "Deployment")
SYSCTL_RE = "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"


def pod(spec: dict[str, Any] | None = None, csc: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "nginx"}
    if csc is not None:
        c["securityContext"] = csc
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                           "spec": {"containers": [c], **(spec or {})}}
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    apply_defaults(POD, obj)
    return obj


def messages(obj: dict[str, Any], resource: Any = POD) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(resource, obj, None)]


CASES = [
    # container securityContext
    ({}, {"runAsUser": -1},
     ["spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"]),
    ({}, {"runAsGroup": 2147483648},
     ["spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: must be between 0 and 2147483647, "
      "inclusive"]),
    ({}, {"procMount": "Weird"},
     ['spec.containers[0].securityContext.procMount: Unsupported value: "Weird": supported values: "Default", '
      '"Unmasked"']),
    ({}, {"procMount": "Unmasked"},
     ['spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use '
      '`Unmasked`']),
    ({"hostUsers": False}, {"procMount": "Unmasked"}, []),
    ({}, {"seccompProfile": {}},
     ["spec.containers[0].securityContext.seccompProfile.type: Required value: type is required when seccompProfile "
      "is set"]),
    ({}, {"seccompProfile": {"type": "Strict"}},
     ['spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: '
      '"Localhost", "RuntimeDefault", "Unconfined"']),
    ({}, {"seccompProfile": {"type": "Localhost"}},
     ["spec.containers[0].securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp "
      "type is Localhost"]),
    ({}, {"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/../x.json"}},
     ['spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/../x.json": must be '
      'a relative path',
      'spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "/etc/../x.json": must not '
      "contain '..'"]),
    ({}, {"seccompProfile": {"type": "RuntimeDefault", "localhostProfile": "x.json"}},
     ['spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: core.SeccompProfile{'
      'Type:"RuntimeDefault", LocalhostProfile:(*string)(0xc000000000)}: can only be set when seccomp type is '
      'Localhost']),
    ({}, {"appArmorProfile": {}},
     ["spec.containers[0].securityContext.appArmorProfile.type: Required value: type is required when "
      "appArmorProfile is set"]),
    ({}, {"appArmorProfile": {"type": "Enforce"}},
     ['spec.containers[0].securityContext.appArmorProfile.type: Unsupported value: "Enforce": supported values: '
      '"Localhost", "RuntimeDefault", "Unconfined"']),
    ({}, {"appArmorProfile": {"type": "Localhost", "localhostProfile": " p "}},
     ['spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: " p ": must not be padded '
      'with whitespace']),
    ({}, {"appArmorProfile": {"type": "Localhost", "localhostProfile": ""}},
     ["spec.containers[0].securityContext.appArmorProfile.localhostProfile: Required value: must be set when "
      "AppArmor type is Localhost"]),
    ({}, {"appArmorProfile": {"type": "Unconfined", "localhostProfile": "p"}},
     ['spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: "p": can only be set when '
      'AppArmor type is Localhost']),
    ({}, {"allowPrivilegeEscalation": False, "privileged": True},
     ["spec.containers[0].securityContext: Invalid value: core.SecurityContext{Capabilities:(*core.Capabilities)(nil), "
      "Privileged:(*bool)(0xc000000000), SELinuxOptions:(*core.SELinuxOptions)(nil), "
      "WindowsOptions:(*core.WindowsSecurityContextOptions)(nil), RunAsUser:(*int64)(nil), RunAsGroup:(*int64)(nil), "
      "RunAsNonRoot:(*bool)(nil), ReadOnlyRootFilesystem:(*bool)(nil), AllowPrivilegeEscalation:(*bool)(0xc000000000), "
      "ProcMount:(*core.ProcMountType)(nil), SeccompProfile:(*core.SeccompProfile)(nil), "
      "AppArmorProfile:(*core.AppArmorProfile)(nil)}: cannot set `allowPrivilegeEscalation` to false and "
      "`privileged` to true"]),
    ({}, {"windowsOptions": {"runAsUserName": "a\\b\\c"}},
     ['spec.containers[0].securityContext.windowsOptions.runAsUserName: Invalid value: "a\\\\b\\\\c": runAsUserName '
      'cannot contain more than one backslash']),
    ({}, {"windowsOptions": {"runAsUserName": "..."}},
     ['spec.containers[0].securityContext.windowsOptions.runAsUserName: Invalid value: "...": runAsUserName\'s User '
      'cannot contain only periods or spaces']),
    ({}, {"windowsOptions": {"gmsaCredentialSpecName": "Not_A_Name"}},
     ['spec.containers[0].securityContext.windowsOptions.gmsaCredentialSpecName: Invalid value: "Not_A_Name": a '
      "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
      "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    # pod securityContext
    ({"securityContext": {"fsGroup": -5, "supplementalGroups": [1, -1]}}, None,
     ["spec.securityContext.fsGroup: Invalid value: -5: must be between 0 and 2147483647, inclusive",
      "spec.securityContext.supplementalGroups[1]: Invalid value: -1: must be between 0 and 2147483647, inclusive"]),
    ({"hostPID": True, "shareProcessNamespace": True}, None,
     ["spec.securityContext.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both "
      "be enabled"]),
    ({"securityContext": {"fsGroupChangePolicy": "Sometimes"}}, None,
     ['spec.securityContext.fsGroupChangePolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnRootMismatch"']),
    ({"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                                      {"name": "Kernel.Bad", "value": "1"},
                                      {"name": "kernel.shm_rmid_forced", "value": "0"}, {"value": "1"}]}}, None,
     [f'spec.securityContext.sysctls[1].name: Invalid value: "Kernel.Bad": must have at most 253 characters and '
      f'match regex {SYSCTL_RE}',
      'spec.securityContext.sysctls[2].name: Duplicate value: "kernel.shm_rmid_forced"',
      "spec.securityContext.sysctls[3].name: Required value"]),
    ({"hostNetwork": True, "securityContext": {"sysctls": [{"name": "net/ipv4/ip_local_port_range", "value": "1"}]}},
     None, ['spec.securityContext.sysctls[0].name: Invalid value: "net/ipv4/ip_local_port_range": may not be '
            "specified when 'hostNetwork' is true"]),
    ({"hostIPC": True, "securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}}, None,
     ["spec.securityContext.sysctls[0].name: Invalid value: \"kernel.shm_rmid_forced\": may not be specified when "
      "'hostIPC' is true"]),
    ({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 1000,
                          "appArmorProfile": {"type": "RuntimeDefault"}}}, {"runAsNonRoot": True}, []),
]


@pytest.mark.parametrize("spec,csc,want", CASES)
def test_security_context_validation(spec: dict[str, Any], csc: dict[str, Any] | None, want: list[str]) -> None:
    assert messages(pod(spec, csc)) == want


ANNOTATION_CASES = [
    ({"seccomp.security.alpha.kubernetes.io/pod": "strict"},
     ['metadata.annotations.seccomp.security.alpha.kubernetes.io/pod: Invalid value: "strict": must be a valid '
      "seccomp profile"]),
    ({"container.seccomp.security.alpha.kubernetes.io/c": "localhost/../x"},
     ['metadata.annotations.container.seccomp.security.alpha.kubernetes.io/c: Invalid value: "../x": must not contain '
      "'..'"]),
    ({"container.apparmor.security.beta.kubernetes.io/nope": "runtime/default"},
     ['metadata.annotations[container.apparmor.security.beta.kubernetes.io/nope]: Invalid value: "nope": container not '
      "found"]),
    ({"container.apparmor.security.beta.kubernetes.io/c": "enforce"},
     ['metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]: Invalid value: "enforce": invalid '
      'AppArmor profile name: "enforce"']),
    ({"container.apparmor.security.beta.kubernetes.io/c": "localhost/p",
      "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}, []),
]


@pytest.mark.parametrize("annotations,want", ANNOTATION_CASES)
def test_pod_annotation_validation(annotations: dict[str, str], want: list[str]) -> None:
    assert messages(pod(annotations=annotations)) == want


def test_annotations_and_fields_must_match() -> None:
    obj = pod({"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
              {"seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"},
               "appArmorProfile": {"type": "Localhost", "localhostProfile": "a"}},
              {"seccomp.security.alpha.kubernetes.io/pod": "unconfined",
               "container.seccomp.security.alpha.kubernetes.io/c": "localhost/b.json",
               "container.apparmor.security.beta.kubernetes.io/c": "runtime/default"})
    assert messages(obj) == [
        "spec.securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match",
        "spec.containers[0].securityContext.seccompProfile.localhostProfile: Forbidden: seccomp profile in annotation "
        "and field must match",
        "spec.containers[0].securityContext.appArmorProfile.type: Forbidden: apparmor type in annotation and field "
        "must match",
    ]
    # Windows pods skip the AppArmor comparison (and refuse the Linux-only fields themselves).
    obj["spec"]["os"] = {"name": "windows"}
    assert not [m for m in messages(obj) if "apparmor" in m]


def test_pod_templates_are_checked_too() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"},
                                              "annotations": {"container.apparmor.security.beta.kubernetes.io/x":
                                                              "runtime/default"}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx",
                                                          "securityContext": {"runAsUser": -1}}]}}}}
    apply_defaults(DEPLOY, dep)
    got = messages(dep, DEPLOY)
    assert ('spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/x]: Invalid value: '
            '"x": container not found') in got
    assert ("spec.template.spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and "
            "2147483647, inclusive") in got


def test_apparmor_field_gets_its_annotation_on_create() -> None:
    obj = pod({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
               "initContainers": [{"name": "i", "image": "busybox",
                                   "securityContext": {"appArmorProfile": {"type": "Localhost",
                                                                           "localhostProfile": "prof"}}}]},
              {"appArmorProfile": {"type": "Unconfined"}})
    prepare_for_create(POD, obj)
    assert obj["metadata"]["annotations"] == {
        "container.apparmor.security.beta.kubernetes.io/i": "localhost/prof",
        "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
    }
    assert messages(obj) == []


def test_apparmor_annotation_gets_its_field_on_create() -> None:
    obj = pod({"securityContext": {"appArmorProfile": {"type": "RuntimeDefault"}},
               "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"},
                              {"name": "c", "image": "x"}, {"name": "d", "image": "x"}]},
              annotations={"container.apparmor.security.beta.kubernetes.io/a": "localhost/prof",
                           "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
                           "container.apparmor.security.beta.kubernetes.io/c": "localhost/ padded"})
    apparmor_version_skew(obj)
    a, b, c, d = obj["spec"]["containers"]
    assert a["securityContext"] == {"appArmorProfile": {"type": "Localhost", "localhostProfile": "prof"}}
    assert "securityContext" not in b  # the same as the pod-level profile: nothing to copy
    assert "securityContext" not in c  # an invalid profile is not copied
    # d had neither: it gets the annotation of the pod-level profile
    assert obj["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/d"] == "runtime/default"


def test_apparmor_sync_skips_windows_and_is_create_only() -> None:
    obj = pod({"os": {"name": "windows"}}, {"appArmorProfile": {"type": "RuntimeDefault"}})
    before = copy.deepcopy(obj)
    prepare_for_create(POD, obj)
    assert obj == before
    linux = pod(csc={"appArmorProfile": {"type": "RuntimeDefault"}})
    apply_defaults(POD, linux)  # defaulting alone (the update path) leaves annotations alone
    assert "annotations" not in linux["metadata"]
