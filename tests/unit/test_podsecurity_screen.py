"""The plain-pod shortcut (podsecurity/screen.py) is sound: whatever it accepts, every check of every
level and version allows, on the upstream fixtures and on one-field changes to a plain pod; and it
accepts the plain pods it exists for."""
from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import pytest
import yaml

from kubegate.podsecurity import LevelVersion, evaluate_pod, evaluator
from kubegate.podsecurity.api import BASELINE, NEWEST_MINOR, RESTRICTED
from kubegate.podsecurity.checks import CHECKS, pod_containers
from kubegate.podsecurity.screen import REVIEWED_AGAINST, plainly_allowed
from tests.fixtures import FIXTURES

PSA = FIXTURES / "pod-security"
LEVEL_VERSIONS = [LevelVersion(level, minor) for level in (BASELINE, RESTRICTED) for minor in range(NEWEST_MINOR + 1)]

PLAIN: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"app": "x"}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "pause",
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "kube-api-access-x", "mountPath": "/var/run/secrets"}]}],
        "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
    },
}


def _screened(pod: dict[str, Any]) -> bool:
    """Whether the shortcut accepts the pod. A value of the wrong type (which validation refuses before
    admission, and on which the checks fail too) counts as not accepted."""
    spec = pod.get("spec") or {}
    try:
        return plainly_allowed(pod.get("metadata") or {}, spec, pod_containers(spec))
    except (AttributeError, TypeError):
        return False


def _check_by_check(pod: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The levels and versions at which the checks alone (without the shortcut) refuse the pod. A
    value of the wrong type (which validation refuses before admission) is out of scope: []."""
    with monkeypatch.context() as m:
        m.setattr(evaluator, "plainly_allowed", lambda *a: False)
        try:
            return [str(lv) for lv in LEVEL_VERSIONS
                    if not evaluate_pod(lv, pod.get("metadata"), pod.get("spec")).allowed]
        except (AttributeError, TypeError):
            return []


def test_shape_was_reviewed_against_every_check_revision() -> None:
    # A new check revision may forbid something the shape lets through: review screen.py, then add it.
    assert {(c.id, r.minimum_minor) for c in CHECKS for r in c.revisions} == REVIEWED_AGAINST


@lru_cache(maxsize=1)
def _fixtures() -> list[tuple[str, dict[str, Any]]]:
    return [(str(f.relative_to(PSA)), yaml.safe_load(f.read_text())) for f in sorted(PSA.glob("*/v1.*/*/*.yaml"))]


def test_every_fixture_it_accepts_passes_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = [(name, pod) for name, pod in _fixtures() if _screened(pod)]
    wrong = [f"{name}: {refused[:3]}" for name, pod in accepted if (refused := _check_by_check(pod, monkeypatch))]
    assert not wrong
    # Not vacuous: plain restricted pods are among the fixtures, and no failing fixture gets through.
    assert any(name.startswith("restricted/") and "/pass/" in name for name, _ in accepted)
    assert not [name for name, _ in accepted if "/fail/" in name]


def _set(pod: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(pod)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


_VALUES = [True, False, None, 0, 1, 1000, "", "x", "ALL", "RuntimeDefault", "Unconfined", "Localhost", ["ALL"],
           ["NET_RAW"], {"type": "Unconfined"}, {"type": "RuntimeDefault"}, {}]
# Every field some check reads (and a few none reads), under the pod and its first container.
_POD_PATHS = [
    "spec.hostNetwork", "spec.hostPID", "spec.hostIPC", "spec.hostUsers", "spec.os",
    "spec.securityContext.runAsNonRoot", "spec.securityContext.runAsUser", "spec.securityContext.runAsGroup",
    "spec.securityContext.seccompProfile", "spec.securityContext.seccompProfile.type",
    "spec.securityContext.seLinuxOptions", "spec.securityContext.sysctls", "spec.securityContext.appArmorProfile",
    "spec.securityContext.windowsOptions", "spec.securityContext.fsGroup",
    "metadata.annotations.container.apparmor.security.beta.kubernetes.io/app",
    "metadata.annotations.seccomp.security.alpha.kubernetes.io/pod",
    "metadata.annotations.example.com/note",
]
_CONTAINER_FIELDS = [
    "securityContext.allowPrivilegeEscalation", "securityContext.privileged", "securityContext.procMount",
    "securityContext.runAsNonRoot", "securityContext.runAsUser", "securityContext.runAsGroup",
    "securityContext.readOnlyRootFilesystem", "securityContext.seccompProfile",
    "securityContext.seccompProfile.type", "securityContext.seLinuxOptions", "securityContext.appArmorProfile",
    "securityContext.windowsOptions", "securityContext.capabilities", "securityContext.capabilities.drop",
    "securityContext.capabilities.add", "securityContext", "ports", "livenessProbe", "lifecycle",
]


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in _POD_PATHS:
        if path.startswith("metadata.annotations."):
            key = path.removeprefix("metadata.annotations.")
            for v in ("unconfined", "runtime/default", "localhost/x", ""):
                pod = copy.deepcopy(PLAIN)
                pod["metadata"]["annotations"] = {key: v}
                out.append((f"{path}={v!r}", pod))
            continue
        out += [(f"{path}={v!r}", _set(PLAIN, path, v)) for v in _VALUES]
    for kind in ("containers", "initContainers", "ephemeralContainers"):
        base = PLAIN if kind == "containers" else _set(PLAIN, f"spec.{kind}", copy.deepcopy(PLAIN["spec"]["containers"]))
        for field in _CONTAINER_FIELDS:
            out += [(f"{kind}.0.{field}={v!r}", _set(base, f"spec.{kind}.0.{field}", v)) for v in _VALUES]
    out += [(f"ports hostPort={v!r}", _set(PLAIN, "spec.containers.0.ports", [{"containerPort": 80, "hostPort": v}]))
            for v in (0, 80, None)]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        for handler in ({"httpGet": {"port": 80}}, {"httpGet": {"port": 80, "host": "1.2.3.4"}},
                        {"tcpSocket": {"port": 80, "host": "example.com"}}):
            out.append((f"{probe}={handler}", _set(PLAIN, f"spec.containers.0.{probe}", handler)))
    for hook in ("postStart", "preStop"):
        out.append((f"lifecycle.{hook} host", _set(PLAIN, f"spec.containers.0.lifecycle.{hook}",
                                                   {"httpGet": {"port": 80, "host": "1.2.3.4"}})))
    for source in ("hostPath", "nfs", "gitRepo", "configMap", "secret", "emptyDir", "persistentVolumeClaim"):
        out.append((f"volume {source}", _set(PLAIN, "spec.volumes.0", {"name": "v", source: {"path": "/x"}})))
        out.append((f"volume {source} beside projected",
                    _set(PLAIN, "spec.volumes.0", {**PLAIN["spec"]["volumes"][0], source: {"path": "/x"}})))
    out.append(("volume without source", _set(PLAIN, "spec.volumes.0", {"name": "v"})))
    out.append(("volume source null", _set(PLAIN, "spec.volumes.0", {"name": "v", "configMap": None})))
    return out


def test_every_change_it_accepts_passes_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    mutations = _mutations()
    accepted = [(name, pod) for name, pod in mutations if _screened(pod)]
    wrong = [f"{name}: {refused[:3]}" for name, pod in accepted if (refused := _check_by_check(pod, monkeypatch))]
    assert not wrong
    # Both outcomes occur: the settings no check forbids keep the shape, the rest leave it.
    names = {name for name, _ in accepted}
    assert {"spec.securityContext.runAsGroup=1000", "containers.0.securityContext.readOnlyRootFilesystem=True",
            "livenessProbe={'httpGet': {'port': 80}}", "volume configMap"} <= names
    assert "containers.0.securityContext.privileged=True" not in names
    assert len(accepted) < len(mutations) // 2


def test_accepts_the_plain_pod_and_the_bench_pod_as_admitted() -> None:
    # The admission bench's pod, with the ServiceAccount plugin's volume, is the shape this exists for.
    assert _screened(PLAIN)
    assert evaluate_pod(LevelVersion(RESTRICTED, NEWEST_MINOR), PLAIN["metadata"], PLAIN["spec"]).allowed
    from bench.admission import POD
    admitted = _set(POD, "spec.volumes", PLAIN["spec"]["volumes"])
    assert _screened(admitted)
