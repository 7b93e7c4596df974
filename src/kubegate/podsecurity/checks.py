"""The Pod Security Standards checks, one function per check revision, with upstream's forbidden
reasons and details (k8s.io/pod-security-admission/policy/check_*.go).

A check takes the pod's metadata and spec (JSON dicts) and its containers (`pod_containers(spec)`,
listed once per evaluation rather than once per check) and returns None when it allows the pod,
otherwise (reason, detail). `CHECKS` lists every check with its revisions by first policy version.

Every pod write runs these, and almost every pod passes: so each check walks the pod with plain
loops and builds its lists, sets and messages only once it has found something wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Sequence

from kubegate.podsecurity.api import BASELINE, RESTRICTED

Result = tuple[str, str] | None
Obj = dict[str, Any]
Containers = Sequence[Obj]
CheckFn = Callable[[Obj, Obj, Containers], Result]


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


def pod_containers(spec: Obj) -> Containers:
    """visitContainers: init containers, containers, then ephemeral containers."""
    init, ephemeral = spec.get("initContainers"), spec.get("ephemeralContainers")
    if init or ephemeral:
        return list(chain(init or (), spec.get("containers") or (), ephemeral or ()))
    return spec.get("containers") or ()  # the usual pod: its one list as it is


def _containers_phrase(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_join_quote(names)}"


def _is_windows(spec: Obj) -> bool:
    pod_os = spec.get("os")
    return pod_os.get("name") == "windows" if pod_os else False


def _user_namespaced(spec: Obj) -> bool:
    """From v1.35 pods with hostUsers=false are relaxed for the run-as-root checks."""
    return spec.get("hostUsers") is False


# --- baseline -----------------------------------------------------------------------------------

_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def host_namespaces(meta: Obj, spec: Obj, containers: Containers) -> Result:
    found: list[str] = []
    for k in _HOST_NAMESPACES:
        if spec.get(k) is True:
            found.append(f"{k}=true")
    return ("host namespaces", ", ".join(found)) if found else None


def privileged(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    for c in containers:
        sc = c.get("securityContext")
        if sc and sc.get("privileged") is True:
            bad.append(c.get("name", ""))
    if bad:
        return "privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true"
    return None


_CAPS_BASELINE = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                            "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capabilities_baseline(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    caps: list[str] = []
    for c in containers:
        sc = c.get("securityContext")
        capabilities = sc.get("capabilities") if sc else None
        add = capabilities.get("add") if capabilities else None
        if not add:
            continue
        added = [a for a in add if a not in _CAPS_BASELINE]
        if added:
            bad.append(c.get("name", ""))
            caps += added
    if bad:
        return ("non-default capabilities",
                f"{_containers_phrase(bad)} must not include {_join_quote(sorted(set(caps)))} "
                "in securityContext.capabilities.add")
    return None


def host_path_volumes(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    for v in spec.get("volumes") or ():
        if v.get("hostPath") is not None:
            bad.append(v.get("name", ""))
    if bad:
        return "hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)}"
    return None


def host_ports(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    ports: list[str] = []
    for c in containers:
        container_ports = c.get("ports")
        if not container_ports:
            continue
        found = [str(p["hostPort"]) for p in container_ports if p.get("hostPort")]
        if found:
            bad.append(c.get("name", ""))
            ports += found
    if bad:
        distinct = sorted(set(ports))
        return ("hostPort",
                f"{_containers_phrase(bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('hostPort', 'hostPorts', len(distinct))} {', '.join(distinct)}")
    return None


def _allowed_apparmor_annotation(v: str) -> bool:
    return v == "" or v == "runtime/default" or v.startswith("localhost/")


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_ALLOWED_TYPES = ("RuntimeDefault", "Localhost")


def app_armor_profile(meta: Obj, spec: Obj, containers: Containers) -> Result:
    pod_sc = spec.get("securityContext")
    pod_profile = pod_sc.get("appArmorProfile") if pod_sc else None
    types: list[str] = []
    pod_bad = pod_profile is not None and pod_profile.get("type") not in _APPARMOR_ALLOWED_TYPES
    if pod_bad:
        types.append(pod_profile.get("type") or "")
    bad: list[str] = []
    for c in containers:
        sc = c.get("securityContext")
        profile = sc.get("appArmorProfile") if sc else None
        if profile is not None and profile.get("type") not in _APPARMOR_ALLOWED_TYPES:
            bad.append(c.get("name", ""))
            types.append(profile.get("type") or "")
    pod_annotations = meta.get("annotations")
    annotations = sorted(f"{k}={_go_quote(v)}" for k, v in pod_annotations.items()
                         if k.startswith(_APPARMOR_ANNOTATION_PREFIX)
                         and not _allowed_apparmor_annotation(v)) if pod_annotations else []
    if not pod_bad and not bad and not annotations:
        return None
    setters = ["pod"] if pod_bad else []
    if bad:
        setters.append(_containers_phrase(bad))
    value_list = sorted(set(types)) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    return (_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(value_list)),
            f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(value_list)}")


def _selinux_violation(allowed_types: frozenset[str], pod_opts: Obj | None,
                       container_opts: list[tuple[str, Obj]]) -> Result:
    """The seLinuxOptions check once the pod or a container sets options."""
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
    if pod_opts is not None and not valid(pod_opts):
        setters.append("pod")
    bad = [name for name, opts in container_opts if not valid(opts)]
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


def _selinux_options(allowed_types: frozenset[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        pod_sc = spec.get("securityContext")
        pod_opts = pod_sc.get("seLinuxOptions") if pod_sc else None
        container_opts: list[tuple[str, Obj]] = []
        for c in containers:
            sc = c.get("securityContext")
            opts = sc.get("seLinuxOptions") if sc else None
            if opts is not None:
                container_opts.append((c.get("name", ""), opts))
        if pod_opts is None and not container_opts:
            return None
        return _selinux_violation(allowed_types, pod_opts, container_opts)
    return check


_SELINUX_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
selinux_options_1_0 = _selinux_options(_SELINUX_1_0)
selinux_options_1_31 = _selinux_options(_SELINUX_1_0 | {"container_engine_t"})


def _proc_mount(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        bad: list[str] = []
        kinds: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            pm = sc.get("procMount") if sc else None
            if pm is not None and pm != "Default":
                bad.append(c.get("name", ""))
                kinds.append(pm)
        if bad:
            return ("procMount", f"{_containers_phrase(bad)} must not set securityContext.procMount to "
                                 f"{_join_quote(sorted(set(kinds)))}")
        return None
    return check


proc_mount_1_0 = _proc_mount(relax_user_namespaces=False)
proc_mount_1_35 = _proc_mount(relax_user_namespaces=True)
proc_mount_restricted_1_35 = _proc_mount(relax_user_namespaces=False)


def _valid_seccomp_annotation(v: str) -> bool:
    return v in ("runtime/default", "docker/default") or v.startswith("localhost/")


def seccomp_profile_baseline_1_0(meta: Obj, spec: Obj, containers: Containers) -> Result:
    annotations = meta.get("annotations")
    if not annotations:
        return None
    bad: set[str] = set()
    key = "seccomp.security.alpha.kubernetes.io/pod"
    if key in annotations and not _valid_seccomp_annotation(annotations[key]):
        bad.add(f"{key}={_go_quote(annotations[key])}")
    for c in containers:
        key = "container.seccomp.security.alpha.kubernetes.io/" + c.get("name", "")
        if key in annotations and not _valid_seccomp_annotation(annotations[key]):
            bad.add(f"{key}={_go_quote(annotations[key])}")
    if bad:
        return ("seccompProfile",
                f"forbidden {_plural('annotation', 'annotations', len(bad))} {', '.join(sorted(bad))}")
    return None


_SECCOMP_ALLOWED_TYPES = ("Localhost", "RuntimeDefault")


def _seccomp(restricted: bool, skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        types: list[str] = []
        pod_sc = spec.get("securityContext")
        pod_profile = pod_sc.get("seccompProfile") if pod_sc else None
        pod_set = pod_bad = False
        if pod_profile is not None:
            if pod_profile.get("type") in _SECCOMP_ALLOWED_TYPES:
                pod_set = True
            else:
                pod_bad = True
                types.append(pod_profile.get("type") or "")
        explicit: list[str] = []
        implicit: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            profile = sc.get("seccompProfile") if sc else None
            if profile is not None:
                if profile.get("type") not in _SECCOMP_ALLOWED_TYPES:
                    explicit.append(c.get("name", ""))
                    types.append(profile.get("type") or "")
            elif not pod_set:
                implicit.append(c.get("name", ""))
        if pod_bad or explicit:
            setters = ["pod"] if pod_bad else []
            if explicit:
                setters.append(_containers_phrase(explicit))
            return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                      f"to {_join_quote(sorted(set(types)))}")
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
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        pod_sc = spec.get("securityContext")
        sysctls = pod_sc.get("sysctls") if pod_sc else None
        if not sysctls:
            return None
        bad = [s.get("name", "") for s in sysctls if s.get("name", "") not in allowed]
        return ("forbidden sysctls", ", ".join(bad)) if bad else None
    return check


def windows_host_process(meta: Obj, spec: Obj, containers: Containers) -> Result:
    pod_sc = spec.get("securityContext")
    pod_options = pod_sc.get("windowsOptions") if pod_sc else None
    pod_bad = pod_options.get("hostProcess") is True if pod_options else False
    bad: list[str] = []
    for c in containers:
        sc = c.get("securityContext")
        options = sc.get("windowsOptions") if sc else None
        if options and options.get("hostProcess") is True:
            bad.append(c.get("name", ""))
    if not pod_bad and not bad:
        return None
    setters = ["pod"] if pod_bad else []
    if bad:
        setters.append(_containers_phrase(bad))
    return ("hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")


def _handler_hosts(handler: Obj) -> list[str]:
    return [h for h in ((handler.get("httpGet") or {}).get("host"), (handler.get("tcpSocket") or {}).get("host"))
            if h]


def host_probes_and_host_lifecycle(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    hosts: list[str] = []
    for c in containers:
        lifecycle = c.get("lifecycle") or {}
        found: list[str] = []
        for handler in (c.get("livenessProbe"), c.get("readinessProbe"), c.get("startupProbe"),
                        lifecycle.get("postStart"), lifecycle.get("preStop")):
            if handler:
                found += _handler_hosts(handler)
        if found:
            bad.append(c.get("name", ""))
            hosts += found
    if bad:
        names, distinct = sorted(set(bad)), sorted(set(hosts))
        return ("probe or lifecycle host",
                f"{_containers_phrase(names)} {_plural('uses', 'use', len(names))} "
                f"{_plural('probe or lifecycle host', 'probe or lifecycle hosts', len(distinct))} "
                f"{_join_quote(distinct)}")
    return None


# --- restricted ---------------------------------------------------------------------------------

def _allow_privilege_escalation(skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        bad: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            if not sc or sc.get("allowPrivilegeEscalation") is not False:
                bad.append(c.get("name", ""))
        if bad:
            return ("allowPrivilegeEscalation != false",
                    f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false")
        return None
    return check


def _capabilities_restricted(skip_windows: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if skip_windows and _is_windows(spec):
            return None
        missing_drop: list[str] = []
        adding: list[str] = []
        caps: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            capabilities = sc.get("capabilities") if sc else None
            if capabilities is None:
                missing_drop.append(c.get("name", ""))
                continue
            if "ALL" not in (capabilities.get("drop") or ()):
                missing_drop.append(c.get("name", ""))
            add = capabilities.get("add")
            if add:
                added = [a for a in add if a != "NET_BIND_SERVICE"]
                if added:
                    adding.append(c.get("name", ""))
                    caps += added
        if not missing_drop and not adding:
            return None
        details: list[str] = []
        if missing_drop:
            details.append(f'{_containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
        if adding:
            details.append(f"{_containers_phrase(adding)} must not include {_join_quote(sorted(set(caps)))} "
                           "in securityContext.capabilities.add")
        return "unrestricted capabilities", "; ".join(details)
    return check


ALLOWED_VOLUME_SOURCES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                                    "persistentVolumeClaim", "projected", "secret"})
_RESTRICTED_VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                              "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                              "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                              "scaleIO", "storageos")


def _restricted_volume(v: Obj) -> bool:
    """Whether the volume has a source and none of its sources is allowed. A volume without any
    source is defaulted to emptyDir by the API server (SetDefaults_Volume)."""
    sourced = False
    for k, val in v.items():
        if val is not None and k != "name":
            if k in ALLOWED_VOLUME_SOURCES:
                return False
            sourced = True
    return sourced


def restricted_volumes(meta: Obj, spec: Obj, containers: Containers) -> Result:
    bad: list[str] = []
    kinds: list[str] = []
    for v in spec.get("volumes") or ():
        if _restricted_volume(v):
            bad.append(v.get("name", ""))
            kinds.append(next((k for k in _RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown"))
    if bad:
        distinct = sorted(set(kinds))
        return ("restricted volume types",
                f"{_plural('volume', 'volumes', len(bad))} {_join_quote(bad)} {_plural('uses', 'use', len(bad))} "
                f"{_plural('restricted volume type', 'restricted volume types', len(distinct))} "
                f"{_join_quote(distinct)}")
    return None


def _run_as_non_root(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        pod_sc = spec.get("securityContext")
        pod_value = pod_sc.get("runAsNonRoot") if pod_sc else None
        explicit: list[str] = []
        implicit: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            value = sc.get("runAsNonRoot") if sc else None
            if value is not None:
                if value is False:
                    explicit.append(c.get("name", ""))
            elif pod_value is not True:
                implicit.append(c.get("name", ""))
        if pod_value is False or explicit:
            setters = ["pod"] if pod_value is False else []
            if explicit:
                setters.append(_containers_phrase(explicit))
            return ("runAsNonRoot != true",
                    f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
        if implicit:
            return ("runAsNonRoot != true",
                    f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true")
        return None
    return check


def _run_as_user(relax_user_namespaces: bool) -> CheckFn:
    def check(meta: Obj, spec: Obj, containers: Containers) -> Result:
        if relax_user_namespaces and _user_namespaced(spec):
            return None
        pod_sc = spec.get("securityContext")
        pod_root = pod_sc.get("runAsUser") == 0 if pod_sc else False
        bad: list[str] = []
        for c in containers:
            sc = c.get("securityContext")
            if sc and sc.get("runAsUser") == 0:
                bad.append(c.get("name", ""))
        if not pod_root and not bad:
            return None
        setters = ["pod"] if pod_root else []
        if bad:
            setters.append(_containers_phrase(bad))
        return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"
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
