"""A shortcut for the plainest pods: a shape that every check of every level and version allows.

Almost every pod a restricted namespace admits looks the same: a pod securityContext with
runAsNonRoot and a RuntimeDefault (or Localhost) seccomp profile, containers that drop ALL
capabilities and forbid privilege escalation, and only the allowed volume types. In the server every
check is a separate cold call, so evaluating such a pod check by check costs about three times
what it does in a tight loop. `plainly_allowed` recognises that shape in one pass; a pod that
deviates from it in any way is evaluated check by check, which stays the authority (and the only
source of messages).

The shape only admits settings that no check forbids at any version, so it is sound for baseline
and restricted alike; REVIEWED_AGAINST names the check revisions it was checked against, and a
test fails when CHECKS gains one, so that the shape is reviewed again.
"""
from __future__ import annotations

from typing import Any

from kubegate.podsecurity.checks import ALLOWED_VOLUME_SOURCES, Containers, host_ports, host_probes_and_host_lifecycle

Obj = dict[str, Any]

REVIEWED_AGAINST = frozenset({
    ("appArmorProfile", 0), ("capabilities_baseline", 0), ("hostNamespaces", 0), ("hostPathVolumes", 0),
    ("hostPorts", 0), ("hostProbesAndHostLifecycle", 34), ("privileged", 0), ("procMount", 0), ("procMount", 35),
    ("seLinuxOptions", 0), ("seLinuxOptions", 31), ("seccompProfile_baseline", 0), ("seccompProfile_baseline", 19),
    ("sysctls", 0), ("sysctls", 27), ("sysctls", 29), ("sysctls", 32), ("sysctls", 37), ("windowsHostProcess", 0),
    ("allowPrivilegeEscalation", 8), ("allowPrivilegeEscalation", 25), ("capabilities_restricted", 22),
    ("capabilities_restricted", 25), ("procMount_restricted", 35), ("restrictedVolumes", 0), ("runAsNonRoot", 0),
    ("runAsNonRoot", 35), ("runAsUser", 23), ("runAsUser", 35), ("seccompProfile_restricted", 19),
    ("seccompProfile_restricted", 25),
})

# Settings no check reads, besides the ones the shape requires or bounds below.
_POD_CONTEXT_KEYS = frozenset({"runAsNonRoot", "seccompProfile", "runAsUser", "runAsGroup", "fsGroup",
                               "fsGroupChangePolicy", "supplementalGroups", "supplementalGroupsPolicy"})
_CONTAINER_CONTEXT_KEYS = frozenset({"allowPrivilegeEscalation", "capabilities", "readOnlyRootFilesystem",
                                     "runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"})
_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _user_ok(sc: Obj) -> bool:
    """runAsUser unset or a non-zero number (False would compare equal to 0)."""
    user = sc.get("runAsUser")
    return user is None or (type(user) is int and user != 0)


def plainly_allowed(meta: Obj, spec: Obj, containers: Containers) -> bool:
    """True only for pods of the plain shape, which every check of every level and version allows;
    False says nothing (the checks decide). Kept to few calls: it runs cold, once per pod write."""
    annotations = meta.get("annotations")
    if annotations and any("apparmor" in k or "seccomp" in k for k in annotations):
        return False
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        return False
    sc = spec.get("securityContext")
    if not isinstance(sc, dict) or sc.get("runAsNonRoot") is not True or not _POD_CONTEXT_KEYS.issuperset(sc):
        return False
    profile = sc.get("seccompProfile")
    if not isinstance(profile, dict) or profile.get("type") not in _SECCOMP_TYPES or not _user_ok(sc):
        return False
    for v in spec.get("volumes") or ():
        # exactly one source, and an allowed one: neither restricted nor hostPath
        if not isinstance(v, dict) or len(v) != 2 or "name" not in v:
            return False
        for source, value in v.items():
            if source != "name" and (source not in ALLOWED_VOLUME_SOURCES or value is None):
                return False
    for c in containers:
        sc = c.get("securityContext")
        if not isinstance(sc, dict) or sc.get("allowPrivilegeEscalation") is not False \
                or not _CONTAINER_CONTEXT_KEYS.issuperset(sc):
            return False
        caps = sc.get("capabilities")
        if not isinstance(caps, dict) or len(caps) != 1:
            return False
        drop = caps.get("drop")
        if not isinstance(drop, list) or "ALL" not in drop:
            return False
        if sc.get("runAsNonRoot", True) is not True or not _user_ok(sc):
            return False
        profile = sc.get("seccompProfile")
        if profile is not None and (not isinstance(profile, dict) or profile.get("type") not in _SECCOMP_TYPES):
            return False
    # Host ports and probe hosts: the checks themselves, once for all containers.
    return host_ports(meta, spec, containers) is None and host_probes_and_host_lifecycle(meta, spec, containers) is None
