"""Every upstream Pod Security fixture (4,537 pods) decides as its folder says, and the messages
match what a real kube-apiserver returned (goldens)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kubegate.podsecurity import LevelVersion, evaluate_pod
from kubegate.podsecurity.api import LATEST, NEWEST_MINOR, parse_level, parse_version
from tests.fixtures import FIXTURES, GOLDENS

PSA = FIXTURES / "pod-security"
DIRS = sorted(PSA.glob("*/v1.*"))


def test_fixture_set_is_complete() -> None:
    assert len(list(PSA.glob("*/v1.*/*/*.yaml"))) == 4537
    assert max(int(d.name.split(".")[1]) for d in DIRS) == NEWEST_MINOR


@pytest.mark.parametrize("directory", DIRS, ids=lambda d: f"{d.parent.name}-{d.name}")
def test_fixtures_decide_as_their_folder_says(directory: Path) -> None:
    lv = LevelVersion(parse_level(directory.parent.name), parse_version(directory.name))
    wrong = []
    for f in sorted(directory.glob("*/*.yaml")):
        pod = yaml.safe_load(f.read_text())
        result = evaluate_pod(lv, pod.get("metadata"), pod.get("spec"))
        if result.allowed != (f.parent.name == "pass"):
            wrong.append(f"{f.parent.name}/{f.name}: {result.forbidden_detail() or 'allowed'}")
    assert not wrong


def test_fail_fixture_names_its_check() -> None:
    # Each fail pod fails exactly one check, the one its file is named after.
    pod = yaml.safe_load((PSA / "restricted/v1.37/fail/runasuser0.yaml").read_text())
    result = evaluate_pod(LevelVersion("restricted", LATEST), pod["metadata"], pod["spec"])
    assert [v.reason for v in result.violations] == ["runAsUser=0"]


def test_versions_past_the_newest_evaluate_as_the_newest() -> None:
    pod = yaml.safe_load((PSA / "restricted/v1.37/fail/sysctls0.yaml").read_text())
    assert not evaluate_pod(LevelVersion("restricted", 99), pod["metadata"], pod["spec"]).allowed
    ok = yaml.safe_load((PSA / "restricted/v1.37/pass/base.yaml").read_text())
    assert evaluate_pod(LevelVersion("restricted", 99), ok["metadata"], ok["spec"]).allowed


def test_privileged_allows_everything() -> None:
    pod = yaml.safe_load((PSA / "baseline/v1.37/fail/privileged0.yaml").read_text())
    assert evaluate_pod(LevelVersion("privileged", LATEST), pod["metadata"], pod["spec"]).allowed


def _golden(name: str) -> dict:
    return json.loads((GOLDENS / "podsecurity" / name).read_text())


@pytest.mark.parametrize("name,level,minor", [
    ("enforce-baseline-hostpath-pod.json", "baseline", LATEST),
    ("enforce-baseline-privileged-pod.json", "baseline", LATEST),
    ("enforce-restricted-plain-pod.json", "restricted", LATEST),
    ("enforce-restricted-dry-run.json", "restricted", LATEST),
    ("mixed-labels-privileged-pod.json", "baseline", 30),
])
def test_denial_details_match_goldens(name: str, level: str, minor: int) -> None:
    g = _golden(name)
    pod = g["request"]["body"]
    lv = LevelVersion(level, minor)
    result = evaluate_pod(lv, pod.get("metadata"), pod["spec"])
    expected = g["response"]["body"]["message"]
    assert f'pods "{pod["metadata"]["name"]}" is forbidden: violates PodSecurity "{lv}": ' \
           f"{result.forbidden_detail()}" == expected


def test_detail_formats() -> None:
    spec = {
        "securityContext": {"seLinuxOptions": {"type": "foo_t", "role": "r"}, "sysctls": [{"name": "a"}, {"name": "b"}]},
        "containers": [
            {"name": "a", "ports": [{"hostPort": 80}, {"hostPort": 8080}],
             "securityContext": {"procMount": "Unmasked", "appArmorProfile": {"type": "Unconfined"}}},
            {"name": "b", "ports": [{"hostPort": 81}], "securityContext": {"runAsNonRoot": False, "runAsUser": 0}},
        ],
        "volumes": [{"name": "v1", "hostPath": {"path": "/"}}, {"name": "v2", "nfs": {}}],
    }
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/b": "unconfined"}}
    got = {v.reason: v.detail for v in evaluate_pod(LevelVersion("restricted", LATEST), meta, spec).violations}
    assert got["hostPort"] == 'containers "a", "b" use hostPorts 80, 8080, 81'
    assert got["forbidden AppArmor profiles"] == (
        'container "a" and annotation must not set AppArmor profile type to '
        '"Unconfined", "container.apparmor.security.beta.kubernetes.io/b="unconfined""')
    assert got["seLinuxOptions"] == ('pod set forbidden securityContext.seLinuxOptions: type "foo_t"; '
                                     "role may not be set")
    assert got["forbidden sysctls"] == "a, b"
    assert got["procMount"] == 'container "a" must not set securityContext.procMount to "Unmasked"'
    assert got["restricted volume types"] == 'volumes "v1", "v2" use restricted volume types "hostPath", "nfs"'
    assert got["runAsNonRoot != true"] == 'container "b" must not set securityContext.runAsNonRoot=false'
    assert got["runAsUser=0"] == 'container "b" must not set runAsUser=0'
    assert "hostPath volumes" not in got  # restricted replaces it with restricted volume types
    baseline = {v.reason for v in evaluate_pod(LevelVersion("baseline", LATEST), meta, spec).violations}
    assert "hostPath volumes" in baseline and "restricted volume types" not in baseline
