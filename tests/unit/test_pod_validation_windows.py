"""Windows and OS rules of pod validation, seLinuxChangePolicy and --allow-privileged
(pkg/apis/core/validation: validateWindowsHostProcessPod, validateOS/validateLinux/validateWindows,
validateWindowsSecurityContextOptions, validatePodSpecSecurityContext, ValidateSecurityContext)."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.api.defaults import apply_defaults
from kubegate.api.resources import RESOURCES
from kubegate.api.validation import PodOptions, validate

POD = next(r for r in RESOURCES if r.group == "" and r.kind == "Pod")
DEPLOY = next(r for r in RESOURCES if r.group == "apps" and r.kind == "Deployment")
STRICT = PodOptions(allow_privileged=False)


def pod(spec: dict[str, Any] | None = None, csc: dict[str, Any] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "image": "nginx"}
    if csc is not None:
        c["securityContext"] = csc
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                           "spec": {"containers": [c], **(spec or {})}}
    apply_defaults(POD, obj)
    return obj


def messages(obj: dict[str, Any], opts: PodOptions = PodOptions(), resource: Any = POD) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate(resource, obj, None, opts)]


HOST_PROCESS = {"windowsOptions": {"hostProcess": True}}

CASES = [
    # hostProcess: same value everywhere, all containers or none, with hostNetwork
    ({"securityContext": HOST_PROCESS, "hostNetwork": True}, {"windowsOptions": {"hostProcess": False}},
     ["spec.containers[0].securityContext.windowsOptions.hostProcess: Invalid value: false: pod hostProcess value "
      "must be identical if both are specified, was true"]),
    ({"initContainers": [{"name": "i", "image": "x"}], "hostNetwork": True}, HOST_PROCESS,
     ['spec: Invalid value: "": If pod contains any hostProcess containers then all containers must be HostProcess '
      "containers"]),
    ({}, HOST_PROCESS,
     ["spec.hostNetwork: Invalid value: false: hostNetwork must be true if pod contains any hostProcess containers"]),
    ({"securityContext": HOST_PROCESS, "hostNetwork": True}, None, []),
    # runAsUserName domains
    ({}, {"windowsOptions": {"runAsUserName": "CONTOSO\\user"}}, []),
    ({}, {"windowsOptions": {"runAsUserName": "contoso.example.com\\user"}}, []),
    ({}, {"windowsOptions": {"runAsUserName": ".bad\\user"}},
     ['spec.containers[0].securityContext.windowsOptions.runAsUserName: Invalid value: ".bad\\\\user": '
      "runAsUserName's Domain doesn't match the NetBios nor the DNS format"]),
    ({}, {"windowsOptions": {"runAsUserName": "a,b"}},
     ['spec.containers[0].securityContext.windowsOptions.runAsUserName: Invalid value: "a,b": runAsUserName\'s '
      'User cannot contain the following characters: "/\\:;|=,+*?<>@[]']),
    # spec.os
    ({"os": {"name": ""}}, None, ["spec.os.name: Required value: cannot be empty"]),
    ({"os": {"name": "plan9"}}, None, ['spec.os: Unsupported value: "plan9": supported values: "linux", "windows"']),
    ({"os": {"name": "linux"}, "securityContext": {"windowsOptions": {"runAsUserName": "u"}}},
     {"windowsOptions": {"runAsUserName": "u"}},
     ["spec.securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod",
      "spec.containers[0].securityContext.windowsOptions: Forbidden: windows options cannot be set for a linux pod"]),
    ({"os": {"name": "windows"}, "hostPID": True, "hostIPC": False, "shareProcessNamespace": False,
      "securityContext": {"runAsUser": 1, "sysctls": [], "fsGroup": 2, "seLinuxChangePolicy": "Recursive"}},
     {"privileged": False, "capabilities": {}, "runAsGroup": 3},
     ["spec.hostPID: Forbidden: cannot be set for a windows pod",
      "spec.securityContext.fsGroup: Forbidden: cannot be set for a windows pod",
      "spec.shareProcessNamespace: Forbidden: cannot be set for a windows pod",
      "spec.securityContext.runAsUser: Forbidden: cannot be set for a windows pod",
      "spec.securityContext.seLinuxChangePolicy: Forbidden: cannot be set for a windows pod",
      "spec.containers[0].securityContext.capabilities: Forbidden: cannot be set for a windows pod",
      "spec.containers[0].securityContext.privileged: Forbidden: cannot be set for a windows pod",
      "spec.containers[0].securityContext.runAsGroup: Forbidden: cannot be set for a windows pod"]),
    ({"os": {"name": "windows"}, "securityContext": {"windowsOptions": {"runAsUserName": "u"}}}, None, []),
    # seLinuxChangePolicy
    ({"securityContext": {"seLinuxChangePolicy": "MountOption"}}, None, []),
    ({"securityContext": {"seLinuxChangePolicy": "Sometimes"}}, None,
     ['spec.securityContext.seLinuxChangePolicy: Unsupported value: "Sometimes": supported values: "MountOption", '
      '"Recursive"']),
]


@pytest.mark.parametrize("spec,csc,want", CASES)
def test_windows_and_os_rules(spec: dict[str, Any], csc: dict[str, Any] | None, want: list[str]) -> None:
    assert messages(pod(spec, csc)) == want


def test_privileged_containers_follow_allow_privileged() -> None:
    obj = pod({"initContainers": [{"name": "i", "image": "x", "securityContext": {"privileged": True}}]},
              {"privileged": True})
    assert messages(obj) == []
    assert messages(obj, STRICT) == [
        "spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy",
        "spec.initContainers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"]
    assert messages(pod(None, {"privileged": False}), STRICT) == []


def test_ephemeral_containers_cannot_be_set_on_create() -> None:
    obj = pod({"ephemeralContainers": [{"name": "e", "image": "x", "securityContext": {"privileged": True}}]})
    assert messages(obj, STRICT) == [
        "spec.ephemeralContainers[0].securityContext.privileged: Forbidden: disallowed by cluster policy",
        "spec.ephemeralContainers: Forbidden: cannot be set on create"]


def test_host_process_needs_allow_privileged() -> None:
    obj = pod({"securityContext": HOST_PROCESS, "hostNetwork": True})
    assert messages(obj, STRICT) == ["spec: Forbidden: hostProcess containers are disallowed by cluster policy"]


def test_templates_are_held_to_allow_privileged() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "x",
                                                          "securityContext": {"privileged": True}}]}}}}
    apply_defaults(DEPLOY, dep)
    assert messages(dep, resource=DEPLOY) == []
    assert messages(dep, STRICT, DEPLOY) == [
        "spec.template.spec.containers[0].securityContext.privileged: Forbidden: disallowed by cluster policy"]
