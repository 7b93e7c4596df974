"""The admission chain: upstream's plugin order and defaults, the flags' errors, the admission
configuration file, and phase order."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kubegate.admission.chain import (
    DEFAULT_ON, ORDER, AdmissionChain, AdmissionConfigError, PluginDeps, build_chain, enabled_plugins,
    read_config_file,
)
from kubegate.admission.interface import CREATE, AdmissionRequest
from kubegate.api.resources import RESOURCES
from kubegate.authn.user import UserInfo

PODS = next(r for r in RESOURCES if r.group == "" and r.plural == "pods")


def test_defaults_in_upstream_order() -> None:
    names = enabled_plugins([], [])
    assert names == [n for n in ORDER if n in DEFAULT_ON]
    assert names[:3] == ["NamespaceLifecycle", "LimitRanger", "ServiceAccount"]
    assert names[-4:] == ["MutatingAdmissionWebhook", "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook",
                          "ResourceQuota"]
    assert "NodeRestriction" not in names and "AlwaysPullImages" not in names


def test_flag_order_does_not_matter() -> None:
    a = enabled_plugins(["AlwaysDeny", "AlwaysPullImages", "NamespaceExists"], ["ResourceQuota"])
    b = enabled_plugins(["NamespaceExists", "AlwaysPullImages", "AlwaysDeny"], ["ResourceQuota"])
    assert a == b
    assert a.index("NamespaceExists") < a.index("LimitRanger") < a.index("AlwaysPullImages")
    assert a[-1] == "AlwaysDeny" and "ResourceQuota" not in a


def test_unknown_and_overlapping_names_fail() -> None:
    with pytest.raises(AdmissionConfigError) as e:
        enabled_plugins(["Bogus"], [])
    assert str(e.value) == 'enable-admission-plugins plugin "Bogus" is unknown'
    with pytest.raises(AdmissionConfigError) as e:
        enabled_plugins(["Bogus"], ["Nope", "AlwaysDeny"])
    assert str(e.value) == ('[enable-admission-plugins plugin "Bogus" is unknown, '
                            'disable-admission-plugins plugin "Nope" is unknown]')
    with pytest.raises(AdmissionConfigError) as e:
        enabled_plugins(["AlwaysDeny", "LimitRanger"], ["LimitRanger", "AlwaysDeny"])
    assert str(e.value) == "[AlwaysDeny LimitRanger] in enable-admission-plugins and disable-admission-plugins overlapped"


def test_config_file_inline_and_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "erl.yaml").write_text(
        "apiVersion: eventratelimit.admission.k8s.io/v1alpha1\nkind: Configuration\n"
        "limits:\n- type: Namespace\n  qps: 1\n  burst: 2\n")
    f = tmp_path / "admission.yaml"
    f.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
                 "- name: EventRateLimit\n  path: sub/erl.yaml\n"
                 "- name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n"
                 "    kind: PodSecurityConfiguration\n    defaults: {enforce: baseline}\n"
                 "- name: AlwaysAdmit\n")
    conf = read_config_file(str(f))
    assert conf["EventRateLimit"] is not None and conf["EventRateLimit"]["limits"][0]["burst"] == 2
    assert conf["PodSecurity"] == {"apiVersion": "pod-security.admission.config.k8s.io/v1",
                                   "kind": "PodSecurityConfiguration", "defaults": {"enforce": "baseline"}}
    assert conf["AlwaysAdmit"] is None
    assert read_config_file(None) == {}


def test_legacy_image_policy_file(tmp_path: Path) -> None:
    f = tmp_path / "legacy.yaml"
    f.write_text("imagePolicy:\n  kubeConfigFile: /k\n  defaultAllow: true\n")
    assert read_config_file(str(f), ["ImagePolicyWebhook"]) == {
        "ImagePolicyWebhook": {"imagePolicy": {"kubeConfigFile": "/k", "defaultAllow": True}}}


@pytest.mark.parametrize("text, message", [
    ("plugins: [", "failed to read plugin config: error converting YAML to JSON: yaml: line 1: "),
    ("apiVersion: v1\nkind: ConfigMap\n", 'failed to read plugin config: no kind "ConfigMap" is registered'),
    ("plugins: []\n", "failed to read plugin config: Object 'Kind' is missing in 'plugins: []'"),
    ("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- path: x\n",
     "failed to read plugin config: plugins[0].name: Required value"),
    ("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: X\n  path: nope.yaml\n",
     "failed to read plugin config for X: open "),
])
def test_bad_config_files_fail_clearly(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(text)
    with pytest.raises(AdmissionConfigError) as e:
        read_config_file(str(f))
    assert str(e.value).startswith(message)


def test_missing_config_file(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.yaml")
    with pytest.raises(AdmissionConfigError) as e:
        read_config_file(path)
    assert str(e.value) == (f'failed to read plugin config: unable to read admission control configuration from '
                            f'"{path}" [open {path}: no such file or directory]')


class _Recorder:
    def __init__(self, name: str, log: list[str], mutating: bool = True, validating: bool = True) -> None:
        self.name = name
        self.log = log
        if not mutating:
            self.admit = None  # type: ignore[assignment]
        if not validating:
            self.validate = None  # type: ignore[assignment]

    async def admit(self, req: AdmissionRequest) -> None:
        self.log.append(f"admit:{self.name}")

    async def validate(self, req: AdmissionRequest) -> None:
        self.log.append(f"validate:{self.name}")


def test_phases_and_table(tmp_path: Path) -> None:
    log: list[str] = []
    seen: dict[str, Any] = {}

    def factory(name: str, **kw: bool) -> Any:
        def make(conf: dict[str, Any] | None, deps: PluginDeps) -> _Recorder:
            seen[name] = conf
            return _Recorder(name, log, **kw)
        return make

    table = {"AlwaysAdmit": factory("AlwaysAdmit", validating=False),
             "LimitRanger": factory("LimitRanger"),
             "ResourceQuota": factory("ResourceQuota", mutating=False)}
    deps = PluginDeps({}, {}, authorizer=None, cfg=None)  # type: ignore[arg-type]
    names = enabled_plugins(["AlwaysAdmit"], [])
    chain = build_chain(names, table, {"LimitRanger": {"x": 1}}, deps, guards=[_Recorder("guard", log)])
    assert chain.names == ["AlwaysAdmit", "LimitRanger", "ResourceQuota"]
    assert seen == {"AlwaysAdmit": None, "LimitRanger": {"x": 1}, "ResourceQuota": None}
    req = AdmissionRequest(CREATE, PODS, "ns", "p", UserInfo("u"), {"metadata": {"name": "p"}})
    asyncio.run(chain.admit(req))
    asyncio.run(chain.validate(req))
    assert log == ["admit:AlwaysAdmit", "admit:LimitRanger", "admit:guard",
                   "validate:LimitRanger", "validate:ResourceQuota"]


def test_factory_errors_fail_start_up() -> None:
    def bad(conf: dict[str, Any] | None, deps: PluginDeps) -> Any:
        raise ValueError("limits: Required value")
    deps = PluginDeps({}, {}, authorizer=None, cfg=None)  # type: ignore[arg-type]
    with pytest.raises(AdmissionConfigError) as e:
        build_chain(["EventRateLimit"], {"EventRateLimit": bad}, {}, deps)
    assert str(e.value) == 'couldn\'t init admission plugin "EventRateLimit": limits: Required value'


def test_empty_chain_admits() -> None:
    chain = AdmissionChain([])
    req = AdmissionRequest(CREATE, PODS, "ns", "p", UserInfo("u"), {})
    asyncio.run(chain.admit(req))
    asyncio.run(chain.validate(req))


def test_warning_recorder_dedupes_and_truncates() -> None:
    from kubegate.server.responses import recorded_warnings, warning_header
    assert recorded_warnings(["a", "", "b", "a"]) == ["a", "b"]
    assert warning_header('say "hi" \\ bye') == '299 - "say \\"hi\\" \\\\ bye"'
    long = ["x" * 3000, "y" * 2000, "z" * 300]
    # Past 4096 runes every warning is cut to 256 runes, earlier ones included.
    assert recorded_warnings(long) == ["x" * 256, "y" * 256, "z" * 256]
    many = [f"{i:04d}" + "w" * 300 for i in range(40)]
    kept = recorded_warnings(many)
    assert all(len(w) == 256 for w in kept) and len(kept) == 16  # stops once 4096 runes are written


def test_plugins_declaring_resources_see_only_those() -> None:
    """A plugin with `resources` is called only for writes of those resources (upstream's Handles);
    one without is called for every write, in both phases and on the second mutating pass."""
    seen: list[tuple[str, str]] = []

    class Recorder:
        def __init__(self, name: str, resources: frozenset[tuple[str, str]] | None) -> None:
            self.name = name
            if resources is not None:
                self.resources = resources

        async def admit(self, req: AdmissionRequest) -> None:
            seen.append((self.name, req.resource.plural))
            if self.name == "any" and not req.reinvocation.is_reinvoke:
                req.reinvocation.should_reinvoke = True

        async def validate(self, req: AdmissionRequest) -> None:
            seen.append((self.name + "/v", req.resource.plural))

    configmaps = next(r for r in RESOURCES if r.group == "" and r.plural == "configmaps")
    chain = AdmissionChain([Recorder("pods-only", frozenset({("", "pods")})), Recorder("any", None)])
    for r in (PODS, configmaps, PODS):
        req = AdmissionRequest(CREATE, r, "ns", "x", UserInfo("alice"), {"metadata": {"name": "x"}})
        asyncio.run(chain.admit(req))
        asyncio.run(chain.validate(req))
    pod_calls = [("pods-only", "pods"), ("any", "pods")] * 2 + [("pods-only/v", "pods"), ("any/v", "pods")]
    assert seen == pod_calls + [("any", "configmaps")] * 2 + [("any/v", "configmaps")] + pod_calls


def test_plugins_without_configuration_objects_are_left_out_until_one_exists() -> None:
    """A plugin with `configured_by` runs only while one of its caches holds an object; the chain
    learns of the change from the cache, and a plugin without it always runs."""
    seen: list[str] = []

    class Cache:
        def __init__(self) -> None:
            self.objects: list[str] = []
            self.listeners: list[Any] = []

        def __len__(self) -> int:
            return len(self.objects)

        def on_emptiness_change(self, listener: Any) -> None:
            self.listeners.append(listener)

        def put(self, name: str) -> None:
            self.objects.append(name)
            if len(self.objects) == 1:
                for listener in self.listeners:
                    listener()

        def delete(self) -> None:
            self.objects.pop()
            if not self.objects:
                for listener in self.listeners:
                    listener()

    ranges, quotas = Cache(), Cache()

    class Recorder:
        def __init__(self, name: str, configured_by: tuple[Cache, ...] | None) -> None:
            self.name, self.configured_by = name, configured_by

        async def admit(self, req: AdmissionRequest) -> None:
            seen.append(self.name)

        async def validate(self, req: AdmissionRequest) -> None:
            seen.append(self.name + "/v")

    chain = AdmissionChain([Recorder("ranges", (ranges,)), Recorder("either", (ranges, quotas)),
                            Recorder("always", None)])

    def write() -> list[str]:
        seen.clear()
        req = AdmissionRequest(CREATE, PODS, "ns", "p", UserInfo("alice"), {"metadata": {"name": "p"}})
        asyncio.run(chain.admit(req))
        asyncio.run(chain.validate(req))
        return list(seen)

    assert write() == ["always", "always/v"]
    quotas.put("q")
    assert write() == ["either", "always", "either/v", "always/v"]
    ranges.put("r")
    assert write() == ["ranges", "either", "always", "ranges/v", "either/v", "always/v"]
    quotas.delete()
    ranges.delete()
    assert write() == ["always", "always/v"]
