"""The admission chain (upstream k8s.io/apiserver/pkg/admission and kube-apiserver's
pkg/kubeapiserver/options/plugins.go): which plugins run, in upstream's fixed order whatever order
the flags name them, with the configuration `--admission-control-config-file` gives each.

A write passes `AdmissionChain.admit` (every enabled mutating plugin in order, then the guards that
upstream's storage runs between mutating admission and validation), then the object's validation,
then `AdmissionChain.validate` (every enabled validating plugin in order), then the store. The first
refusal (a StatusError) ends the request.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import yaml

from kubegate.admission.interface import AdmissionRequest, MutatingPlugin, ValidatingPlugin

if TYPE_CHECKING:
    from kubegate.api.registry import ResourceRegistry
    from kubegate.authz.types import Authorizer
    from kubegate.server.config import ServerConfig

log = logging.getLogger("kubegate.admission")

# AllOrderedPlugins (1.36): the order plugins run in, and the names the flags accept.
ORDER: tuple[str, ...] = (
    "AlwaysAdmit", "NamespaceAutoProvision", "NamespaceLifecycle", "NamespaceExists",
    "LimitPodHardAntiAffinityTopology", "LimitRanger", "ServiceAccount", "NodeRestriction", "TaintNodesByCondition",
    "AlwaysPullImages", "ImagePolicyWebhook", "PodSecurity", "PodNodeSelector", "Priority",
    "DefaultTolerationSeconds", "PodTolerationRestriction", "EventRateLimit", "ExtendedResourceToleration",
    "DefaultStorageClass", "StorageObjectInUseProtection", "PodGroupProtection",
    "OwnerReferencesPermissionEnforcement", "PersistentVolumeClaimResize", "RuntimeClass", "CertificateApproval",
    "CertificateSigning", "ClusterTrustBundleAttest", "CertificateSubjectRestriction", "DefaultIngressClass",
    "DenyServiceExternalIPs", "PodTopologyLabels", "PodGroupWorkloadExists", "NodeDeclaredFeatureValidator",
    "JobValidation", "PodResizeValidator",
    # webhook, resource quota and deny plugins must go at the end
    "MutatingAdmissionPolicy", "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook", "ResourceQuota", "AlwaysDeny",
)

# The complement of DefaultOffAdmissionPlugins (1.36).
DEFAULT_ON: frozenset[str] = frozenset({
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "DefaultStorageClass", "PersistentVolumeClaimResize",
    "DefaultTolerationSeconds", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook", "ResourceQuota",
    "StorageObjectInUseProtection", "PodGroupProtection", "Priority", "TaintNodesByCondition", "RuntimeClass",
    "CertificateApproval", "CertificateSigning", "ClusterTrustBundleAttest", "CertificateSubjectRestriction",
    "DefaultIngressClass", "PodSecurity", "PodTopologyLabels", "MutatingAdmissionPolicy",
    "ValidatingAdmissionPolicy", "PodGroupWorkloadExists", "NodeDeclaredFeatureValidator", "JobValidation",
    "PodResizeValidator",
})

# AdmissionConfiguration's accepted group/versions (apiserver.config.k8s.io/v1 and its predecessors).
_CONFIG_API_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1alpha1",
                        "apiserver.k8s.io/v1alpha1")
# Plugins whose configuration predates AdmissionConfiguration: the whole file is theirs when it
# carries their legacy top-level key instead of a kind.
_LEGACY_KEYS = {"imagePolicy": "ImagePolicyWebhook", "podNodeSelectorPluginConfig": "PodNodeSelector"}


class AdmissionConfigError(Exception):
    """Start-up fails: unknown plugin names, an unreadable or unparsable configuration file."""


Plugin = Union[MutatingPlugin, ValidatingPlugin]


@dataclass
class PluginDeps:
    """What plugin factories may use: the registries (reads come from their watch caches), the
    authorizer, the server's flags, and a list to which a plugin adds its long-running tasks."""

    by_plural: Mapping[str, ResourceRegistry]
    registries: Mapping[tuple[str, str, str], ResourceRegistry]
    authorizer: Authorizer
    cfg: ServerConfig
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def cached(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object from the watch cache (no copy: callers must not change it), or None."""
        d = self.by_plural[plural].get_cached(namespace, name)
        return None if d is None else d.obj


Factory = Callable[[Union[dict[str, Any], None], PluginDeps], Plugin]


def enabled_plugins(enable: Sequence[str], disable: Sequence[str], default_on: frozenset[str] = DEFAULT_ON) -> list[str]:
    """Upstream's AdmissionOptions.Validate and enabledPluginNames: the enabled names in ORDER."""
    known = set(ORDER)
    errs = [f'enable-admission-plugins plugin "{n}" is unknown' for n in enable if n not in known]
    errs += [f'disable-admission-plugins plugin "{n}" is unknown' for n in disable if n not in known]
    overlap = sorted(set(enable) & set(disable))
    if overlap:
        errs.append(f"[{' '.join(overlap)}] in enable-admission-plugins and disable-admission-plugins overlapped")
    if errs:
        raise AdmissionConfigError(_aggregate(errs))
    off = (known - default_on) | set(disable)
    off -= set(enable)
    return [n for n in ORDER if n not in off]


def _aggregate(errs: list[str]) -> str:
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


def read_config_file(path: str | None, enabled: Sequence[str] = ()) -> dict[str, dict[str, Any] | None]:
    """`--admission-control-config-file`: each named plugin's configuration (the parsed inline
    `configuration`, or the parsed file its `path` names, relative to the configuration file)."""
    if not path:
        return {}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise AdmissionConfigError(f'failed to read plugin config: unable to read admission control configuration '
                                   f'from "{path}" [open {path}: {(e.strerror or str(e)).lower()}]') from None
    doc = _parse_yaml(data, "failed to read plugin config")
    if not isinstance(doc, dict):
        raise AdmissionConfigError("failed to read plugin config: couldn't get version/kind; json parse error: "
                                   "cannot unmarshal into Object")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not api_version and not kind:
        legacy = [name for key, name in _LEGACY_KEYS.items() if key in doc]
        if legacy:
            return {name: doc for name in legacy if name in enabled or not enabled}
        raise AdmissionConfigError("failed to read plugin config: Object 'Kind' is missing in "
                                   f"'{data.decode(errors='replace').strip()}'")
    if kind != "AdmissionConfiguration" or api_version not in _CONFIG_API_VERSIONS:
        raise AdmissionConfigError(f'failed to read plugin config: no kind "{kind}" is registered for version '
                                   f'"{api_version}" in scheme "k8s.io/apiserver/pkg/admission/config.go"')
    plugins = doc.get("plugins") or []
    if not isinstance(plugins, list):
        raise AdmissionConfigError("failed to read plugin config: plugins: expected a list")
    out: dict[str, dict[str, Any] | None] = {}
    base = os.path.dirname(os.path.abspath(path))
    for i, p in enumerate(plugins):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
            raise AdmissionConfigError(f"failed to read plugin config: plugins[{i}].name: Required value")
        out[p["name"]] = _plugin_config(p, base)
    return out


def _plugin_config(p: dict[str, Any], base: str) -> dict[str, Any] | None:
    """GetAdmissionPluginConfigurationFor: a path wins over inline configuration."""
    if p.get("path"):
        file = p["path"] if os.path.isabs(p["path"]) else os.path.join(base, p["path"])
        try:
            with open(file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise AdmissionConfigError(f"failed to read plugin config for {p['name']}: open {file}: "
                                       f"{(e.strerror or str(e)).lower()}") from None
        conf = _parse_yaml(data, f"failed to read plugin config for {p['name']}")
    else:
        conf = p.get("configuration")
    if conf is None:
        return None
    if not isinstance(conf, dict):
        raise AdmissionConfigError(f"failed to read plugin config for {p['name']}: configuration must be an object")
    return conf


def _parse_yaml(data: bytes, context: str) -> Any:
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise AdmissionConfigError(f"{context}: error converting YAML to JSON: yaml: {where}{problem}") from None


class AdmissionChain:
    """The enabled plugins of both phases, in upstream's order."""

    def __init__(self, plugins: Sequence[Plugin], guards: Sequence[MutatingPlugin] = ()) -> None:
        self.plugins = list(plugins)
        self.mutating: list[MutatingPlugin] = [p for p in plugins if callable(getattr(p, "admit", None))]
        self.validating: list[ValidatingPlugin] = [p for p in plugins if callable(getattr(p, "validate", None))]
        # Checks upstream's storage makes after mutating admission whatever plugins are enabled
        # (RBAC's escalation check); they run last in the mutating phase and cannot be disabled.
        self.guards = list(guards)
        # The plugins that handle each resource, worked out on its first write and again once a
        # plugin's configuration appears or goes.
        self._routes: dict[tuple[str, str], tuple[list[MutatingPlugin], list[MutatingPlugin],
                                                  list[ValidatingPlugin]]] = {}
        for p in self.plugins:
            for source in getattr(p, "configured_by", None) or ():
                source.on_emptiness_change(self._routes.clear)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    def _route(self, req: AdmissionRequest) -> tuple[list[MutatingPlugin], list[MutatingPlugin], list[ValidatingPlugin]]:
        key = (req.resource.group, req.resource.plural)
        route = self._routes.get(key)
        if route is None:
            def handles(p: Any) -> bool:
                resources = getattr(p, "resources", None)
                if resources is not None and key not in resources:
                    return False
                sources = getattr(p, "configured_by", None)
                return sources is None or any(len(s) for s in sources)
            route = self._routes[key] = ([p for p in self.mutating if handles(p)],
                                         [g for g in self.guards if handles(g)],
                                         [p for p in self.validating if handles(p)])
        return route

    async def admit(self, req: AdmissionRequest) -> None:
        mutating, guards, _ = self._route(req)
        for p in mutating:
            await p.admit(req)
        # Upstream's reinvoker: when a webhook changed the object, every mutating plugin runs once more
        # (in-tree plugins are idempotent; webhooks decide from the reinvocation context whether to).
        if req.reinvocation.should_reinvoke:
            req.reinvocation.is_reinvoke = True
            for p in mutating:
                await p.admit(req)
        for g in guards:
            await g.admit(req)

    async def validate(self, req: AdmissionRequest) -> None:
        for p in self._route(req)[2]:
            await p.validate(req)


def build_chain(names: Sequence[str], table: Mapping[str, Factory], config: Mapping[str, dict[str, Any] | None],
                deps: PluginDeps, guards: Sequence[MutatingPlugin] = ()) -> AdmissionChain:
    """Instantiate the enabled plugins that kubegate implements; an enabled upstream plugin that
    kubegate does not implement (its resources are not served, or its feature gate is off) admits
    everything and is named once in the log."""
    plugins: list[Plugin] = []
    absent: list[str] = []
    for name in names:
        factory = table.get(name)
        if factory is None:
            absent.append(name)
            continue
        try:
            plugins.append(factory(config.get(name), deps))
        except AdmissionConfigError:
            raise
        except (ValueError, TypeError, KeyError) as e:
            raise AdmissionConfigError(f'couldn\'t init admission plugin "{name}": {e}') from None
    if absent:
        log.info("admission plugins without effect in kubegate: %s", ", ".join(absent))
    return AdmissionChain(plugins, guards)
