"""The Pod Security Standards checks, one function per check revision, with upstream's forbidden
reasons and details (k8s.io/pod-security-admission/policy/check_*.go).

A check takes the pod's metadata and spec (JSON dicts) and returns None when it allows the pod,
otherwise (reason, detail). `CHECKS` lists every check with its revisions by first policy version.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Iterator

from kubegate.podsecurity.api import BASELINE, RESTRICTED

Result = tuple[str, str] | None
CheckFn = Callable[[dict[str, Any], dict[str, Any]], Result]
Obj = dict[str, Any]


@dataclass(frozen=True)
class Revision:
    minimum_minor: int
    check: CheckFn
    overrides: tuple[str, ...] = ()  # baseline check IDs this restricted revision replaces


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    revisions: tuple[Revision, ...] = field(default_factory=tuple)


# --- helpers (policy/helpers.go, visitor.go) ---------------------------------------------------

def _join_quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def _go_quote(s: str) -> str:
    """Go's %q for the strings that reach these messages."""
    return json.dumps(s, ensure_ascii=False)


def _containers(spec: Obj) -> Iterator[Obj]:
    """visitContainers: init containers, containers, then ephemeral containers."""
    return chain(spec.get("initContainers") or (), spec.get("containers") or (), spec.get("ephemeralContainers") or ())


def _sc(obj: Obj) -> Obj:
    return obj.get("securityContext") or {}


def _containers_phrase(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_join_quote(names)}"


def _is_windows(spec: Obj) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _user_namespaced(spec: Obj) -> bool:
    """From v1.35 pods with hostUsers=false are relaxed for the run-as-root checks."""
    return spec.get("hostUsers") is False


# --- baseline -----------------------------------------------------------------------------------

def host_namespaces(meta: Obj, spec: Obj) -> Result:
    found = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return ("host namespaces", ", ".join(found)) if found else None


def privileged(meta: Obj, spec: Obj) -> Result:
    bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("privileged") is True]
    if bad:
        return "privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true"
    return None


_CAPS_BASELINE = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                            "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capabilities_baseline(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not capabilities:
            continue
        added = [a for a in capabilities.get("add") or () if a not in _CAPS_BASELINE]
        if added:
            bad.append(c.get("name", ""))
            caps.update(added)
    if bad:
        return ("non-default capabilities",
                f"{_containers_phrase(bad)} must not include {_join_quote(sorted(caps))} "
                "in securityContext.capabilities.add")
    return None


def host_path_volumes(meta: Obj, spec: Obj) -> Result:
    bad = [v.get("name", "") for v in spec.get("volumes") or () if v.get("hostPath") is not None]
    if bad:
        return "hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)}"
    return None


def host_ports(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    ports: set[str] = set()
    for c in _containers(spec):
        found = [str(p["hostPort"]) for p in c.get("ports") or () if p.get("hostPort")]
        if found:
            bad.append(c.get("name", ""))
            ports.update(found)
    if bad:
        return ("hostPort",
                f"{_containers_phrase(bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")
    return None


def _allowed_apparmor_annotation(v: str) -> bool:
    return v == "" or v == "runtime/default" or v.startswith("localhost/")


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def app_armor_profile(meta: Obj, spec: Obj) -> Result:
    setters: list[str] = []
    values: set[str] = set()
    pod_profile = (spec.get("securityContext") or {}).get("appArmorProfile")
    if pod_profile is not None and pod_profile.get("type") not in ("RuntimeDefault", "Localhost"):
        setters.append("pod")
        values.add(pod_profile.get("type") or "")
    bad: list[str] = []
    for c in _containers(spec):
        profile = _sc(c).get("appArmorProfile")
        if profile is not None and profile.get("type") not in ("RuntimeDefault", "Localhost"):
            bad.append(c.get("name", ""))
            values.add(profile.get("type") or "")
    if bad:
        setters.append(_containers_phrase(bad))
    annotations = sorted(f"{k}={_go_quote(v)}" for k, v in (meta.get("annotations") or {}).items()
                         if k.startswith(_APPARMOR_ANNOTATION_PREFIX) and not _allowed_apparmor_annotation(v))
    value_list = sorted(values) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if setters:
        return (_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(value_list)),
                f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(value_list)}")
    return None


def _selinux_options(allowed_types: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        bad_types: set[str] = set()
        flags = {"user": False, "role": False}

        def valid(opts: Obj) -> bool:
            ok = True
            t = opts.get("type") or ""
            if t not in allowed_types:
                ok = False
                bad_types.add(t)
            for k in ("user", "role"):
                if opts.get(k):
                    ok = False
                    flags[k] = True
            return ok

        setters: list[str] = []
        pod_opts = (spec.get("securityContext") or {}).get("seLinuxOptions")
        if pod_opts is not None and not valid(pod_opts):
            setters.append("pod")
        bad = [c.get("name", "") for c in _containers(spec)
               if _sc(c).get("seLinuxOptions") is not None and not valid(_sc(c)["seLinuxOptions"])]
        if bad:
            setters.append(_containers_phrase(bad))
        if not setters:
            return None
        data: list[str] = []
        if bad_types:
            data.append(f"{_plural('type', 'types', len(bad_types))} {_join_quote(sorted(bad_types))}")
        if flags["user"]:
            data.append("user may not be set")
        if flags["role"]:
            data.append("role may not be set")
        return ("seLinuxOptions",
                f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")
    return check


_SELINUX_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
selinux_options_1_0 = _selinux_options(_SELINUX_1_0)
selinux_options_1_31 = _selinux_options(_SELINUX_1_0 | {"container_engine_t"})


def _proc_mount(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        bad: list[str] = []
        kinds: set[str] = set()
        for c in _containers(spec):
            pm = _sc(c).get("procMount")
            if pm is not None and pm != "Default":
                bad.append(c.get("name", ""))
                kinds.add(pm)
        if bad:
            return ("procMount", f"{_containers_phrase(bad)} must not set securityContext.procMount to "
                                 f"{_join_quote(sorted(kinds))}")
        return None
    return check


proc_mount_1_0 = _proc_mount(relax_user_namespaces=False)
proc_mount_1_35 = _proc_mount(relax_user_namespaces=True)
proc_mount_restricted_1_35 = _proc_mount(relax_user_namespaces=False)


def _valid_seccomp_annotation(v: str) -> bool:
    return v in ("runtime/default", "docker/default") or v.startswith("localhost/")


def seccomp_profile_baseline_1_0(meta: Obj, spec: Obj) -> Result:
    annotations = meta.get("annotations") or {}
    bad: set[str] = set()
    key = "seccomp.security.alpha.kubernetes.io/pod"
    if key in annotations and not _valid_seccomp_annotation(annotations[key]):
        bad.add(f"{key}={_go_quote(annotations[key])}")
    for c in _containers(spec):
        key = "container.seccomp.security.alpha.kubernetes.io/" + c.get("name", "")
        if key in annotations and not _valid_seccomp_annotation(annotations[key]):
            bad.add(f"{key}={_go_quote(annotations[key])}")
    if bad:
        return ("seccompProfile",
                f"forbidden {_plural('annotation', 'annotations', len(bad))} {', '.join(sorted(bad))}")
    return None


def _seccomp_valid(profile: Obj) -> bool:
    return profile.get("type") in ("Localhost", "RuntimeDefault")


def _seccomp(restricted: bool, skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        setters: list[str] = []
        values: set[str] = set()
        pod_set = False
        pod_profile = (spec.get("securityContext") or {}).get("seccompProfile")
        if pod_profile is not None:
            if _seccomp_valid(pod_profile):
                pod_set = True
            else:
                setters.append("pod")
                values.add(pod_profile.get("type") or "")
        explicit: list[str] = []
        implicit: list[str] = []
        for c in _containers(spec):
            profile = _sc(c).get("seccompProfile")
            if profile is not None:
                if not _seccomp_valid(profile):
                    explicit.append(c.get("name", ""))
                    values.add(profile.get("type") or "")
            elif not pod_set:
                implicit.append(c.get("name", ""))
        if explicit:
            setters.append(_containers_phrase(explicit))
        if setters:
            return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                      f"to {_join_quote(sorted(values))}")
        if restricted and implicit:
            return ("seccompProfile", f"pod or {_containers_phrase(implicit)} must set "
                                      'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
        return None
    return check


seccomp_profile_baseline_1_19 = _seccomp(restricted=False, skip_windows=False)
seccomp_profile_restricted_1_19 = _seccomp(restricted=True, skip_windows=False)
seccomp_profile_restricted_1_25 = _seccomp(restricted=True, skip_windows=True)

_SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                          "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"})
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                                 "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        bad = [s.get("name", "") for s in (spec.get("securityContext") or {}).get("sysctls") or ()
               if s.get("name", "") not in allowed]
        return ("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def windows_host_process(meta: Obj, spec: Obj) -> Result:
    setters: list[str] = []
    if ((spec.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess") is True:
        setters.append("pod")
    bad = [c.get("name", "") for c in _containers(spec)
           if (_sc(c).get("windowsOptions") or {}).get("hostProcess") is True]
    if bad:
        setters.append(_containers_phrase(bad))
    if setters:
        return ("hostProcess",
                f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")
    return None


def _handler_hosts(handler: Obj | None) -> list[str]:
    if not handler:
        return []
    return [h for h in ((handler.get("httpGet") or {}).get("host"), (handler.get("tcpSocket") or {}).get("host"))
            if h]


def host_probes_and_host_lifecycle(meta: Obj, spec: Obj) -> Result:
    bad: set[str] = set()
    hosts: set[str] = set()
    for c in _containers(spec):
        lifecycle = c.get("lifecycle") or {}
        found = [h for handler in (c.get("livenessProbe"), c.get("readinessProbe"), c.get("startupProbe"),
                                   lifecycle.get("postStart"), lifecycle.get("preStop"))
                 for h in _handler_hosts(handler)]
        if found:
            bad.add(c.get("name", ""))
            hosts.update(found)
    if bad:
        return ("probe or lifecycle host",
                f"{_containers_phrase(sorted(bad))} {_plural('uses', 'use', len(bad))} "
                f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
                f"{_join_quote(sorted(hosts))}")
    return None


# --- restricted ---------------------------------------------------------------------------------

def _allow_privilege_escalation(skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
        if bad:
            return ("allowPrivilegeEscalation != false",
                    f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false")
        return None
    return check


def _capabilities_restricted(skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        missing_drop: list[str] = []
        adding: list[str] = []
        caps: set[str] = set()
        for c in _containers(spec):
            capabilities = _sc(c).get("capabilities")
            if capabilities is None:
                missing_drop.append(c.get("name", ""))
                continue
            if "ALL" not in (capabilities.get("drop") or ()):
                missing_drop.append(c.get("name", ""))
            added = [a for a in capabilities.get("add") or () if a != "NET_BIND_SERVICE"]
            if added:
                adding.append(c.get("name", ""))
                caps.update(added)
        details: list[str] = []
        if missing_drop:
            details.append(f'{_containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
        if adding:
            details.append(f"{_containers_phrase(adding)} must not include {_join_quote(sorted(caps))} "
                           "in securityContext.capabilities.add")
        return ("unrestricted capabilities", "; ".join(details)) if details else None
    return check


_ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                           "persistentVolumeClaim", "projected", "secret")
_RESTRICTED_VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                              "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                              "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                              "scaleIO", "storageos")


def restricted_volumes(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    kinds: set[str] = set()
    for v in spec.get("volumes") or ():
        # A volume without any source is defaulted to emptyDir by the API server (SetDefaults_Volume).
        if any(v.get(k) is not None for k in _ALLOWED_VOLUME_SOURCES) or not any(
                val is not None for k, val in v.items() if k != "name"):
            continue
        bad.append(v.get("name", ""))
        kinds.add(next((k for k in _RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown"))
    if bad:
        return ("restricted volume types",
                f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} "
                f"{_join_quote(sorted(kinds))}")
    return None


def _run_as_non_root(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        setters: list[str] = []
        pod_value = (spec.get("securityContext") or {}).get("runAsNonRoot")
        if pod_value is False:
            setters.append("pod")
        explicit: list[str] = []
        implicit: list[str] = []
        for c in _containers(spec):
            value = _sc(c).get("runAsNonRoot")
            if value is not None:
                if value is False:
                    explicit.append(c.get("name", ""))
            elif pod_value is not True:
                implicit.append(c.get("name", ""))
        if explicit:
            setters.append(_containers_phrase(explicit))
        if setters:
            return ("runAsNonRoot != true",
                    f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
        if implicit:
            return ("runAsNonRoot != true",
                    f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true")
        return None
    return check


def _run_as_user(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        setters: list[str] = []
        if (spec.get("securityContext") or {}).get("runAsUser") == 0:
            setters.append("pod")
        bad = [c.get("name", "") for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
        if bad:
            setters.append(_containers_phrase(bad))
        if setters:
            return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"
        return None
    return check


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", BASELINE, (Revision(0, app_armor_profile),)),
    Check("capabilities_baseline", BASELINE, (Revision(0, capabilities_baseline),)),
    Check("hostNamespaces", BASELINE, (Revision(0, host_namespaces),)),
    Check("hostPathVolumes", BASELINE, (Revision(0, host_path_volumes),)),
    Check("hostPorts", BASELINE, (Revision(0, host_ports),)),
    Check("hostProbesAndHostLifecycle", BASELINE, (Revision(34, host_probes_and_host_lifecycle),)),
    Check("privileged", BASELINE, (Revision(0, privileged),)),
    Check("procMount", BASELINE, (Revision(0, proc_mount_1_0), Revision(35, proc_mount_1_35))),
    Check("seLinuxOptions", BASELINE, (Revision(0, selinux_options_1_0), Revision(31, selinux_options_1_31))),
    Check("seccompProfile_baseline", BASELINE,
          (Revision(0, seccomp_profile_baseline_1_0), Revision(19, seccomp_profile_baseline_1_19))),
    Check("sysctls", BASELINE, (Revision(0, _sysctls(_SYSCTLS_1_0)), Revision(27, _sysctls(_SYSCTLS_1_27)),
                                Revision(29, _sysctls(_SYSCTLS_1_29)), Revision(32, _sysctls(_SYSCTLS_1_32)),
                                Revision(37, _sysctls(_SYSCTLS_1_37)))),
    Check("windowsHostProcess", BASELINE, (Revision(0, windows_host_process),)),
    Check("allowPrivilegeEscalation", RESTRICTED,
          (Revision(8, _allow_privilege_escalation(False)), Revision(25, _allow_privilege_escalation(True)))),
    Check("capabilities_restricted", RESTRICTED,
          (Revision(22, _capabilities_restricted(False), ("capabilities_baseline",)),
           Revision(25, _capabilities_restricted(True), ("capabilities_baseline",)))),
    Check("procMount_restricted", RESTRICTED, (Revision(35, proc_mount_restricted_1_35, ("procMount",)),)),
    Check("restrictedVolumes", RESTRICTED, (Revision(0, restricted_volumes, ("hostPathVolumes",)),)),
    Check("runAsNonRoot", RESTRICTED, (Revision(0, _run_as_non_root(False)), Revision(35, _run_as_non_root(True)))),
    Check("runAsUser", RESTRICTED, (Revision(23, _run_as_user(False)), Revision(35, _run_as_user(True)))),
    Check("seccompProfile_restricted", RESTRICTED,
          (Revision(19, seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
           Revision(25, seccomp_profile_restricted_1_25, ("seccompProfile_baseline",)))),
)
