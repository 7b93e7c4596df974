"""Core (v1) kind validators, after pkg/apis/core/validation/validation.go."""
from __future__ import annotations

import base64
import binascii
import copy
import difflib
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from kubegate.api.errors import (
    Cause, field_duplicate, field_forbidden, field_invalid, field_not_supported, field_required,
    field_too_long,
)

from . import names, quantity
from .common import GoJSON, d, field_not_found, lst, nonnegative, s, unique_item_name
from kubegate.api.gojson import unmarshal_object_error
from .meta import (
    immutable, validate_annotations, validate_labels, validate_meta, validate_object_meta, validate_object_meta_update,
)

MAX_SECRET_SIZE = 1024 * 1024
IMMUTABLE_SET = "field is immutable when `immutable` is set"
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})

_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
_VOLUME_MODES = ["Block", "Filesystem"]
_TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
_TOLERATION_OPERATORS = ["Equal", "Exists"]
# Membership tests on the hot path; the lists above keep the order field_not_supported reports.
_TAINT_EFFECT_SET = frozenset(_TAINT_EFFECTS)
_TOLERATION_OPERATOR_SET = frozenset(_TOLERATION_OPERATORS)
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)
_VOLUME_SOURCE_ORDER = {k: i for i, k in enumerate(_VOLUME_SOURCES)}
_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
_MAX_INT32 = 2**31 - 1


# --- Namespace ---------------------------------------------------------------------------------

def _finalizer_name(path: str, name: str) -> list[Cause]:
    causes = [field_invalid(path, name, m) for m in names.is_qualified_name(name)]
    if not causes and "/" not in name and name not in STANDARD_FINALIZERS:
        causes.append(field_invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
    return causes


def namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = validate_meta(obj, old, False, names.name_is_dns_label)
    for f in lst(d(obj.get("spec")).get("finalizers")):
        causes += _finalizer_name("spec.finalizers", s(f))
    return causes


# --- ConfigMap -----------------------------------------------------------------------------------

def _map_keys(path: str, keys: list[str]) -> list[Cause]:
    causes: list[Cause] = []
    for k in keys:
        causes += [field_invalid(f"{path}[{k}]", k, m) for m in names.is_config_map_key(k)]
    return causes


def configmap(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes: list[Cause] = []
    if old is None:
        causes += validate_object_meta(m, True, names.name_is_dns_subdomain)
    else:
        causes += validate_object_meta_update(m, d(old.get("metadata")))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                causes.append(field_forbidden("immutable", IMMUTABLE_SET))
            if d(obj.get("data")) != d(old.get("data")):
                causes.append(field_forbidden("data", IMMUTABLE_SET))
            if d(obj.get("binaryData")) != d(old.get("binaryData")):
                causes.append(field_forbidden("binaryData", IMMUTABLE_SET))
    data, binary = d(obj.get("data")), d(obj.get("binaryData"))
    total = 0
    for k in sorted(data):
        total += len(s(data[k]).encode())
        causes += _map_keys("data", [k])
        if k in binary:
            causes.append(field_invalid(f"data[{k}]", k, "duplicate of key present in binaryData"))
    for k in sorted(binary):
        total += len(_b64(binary[k]))
        causes += _map_keys("binaryData", [k])
        if k in data:
            causes.append(field_invalid(f"binaryData[{k}]", k, "duplicate of key present in data"))
    if total > MAX_SECRET_SIZE:
        # upstream reports the aggregate size against the root path, which renders as "[]"
        causes.append(field_too_long("[]", MAX_SECRET_SIZE))
    return causes


# --- Secret --------------------------------------------------------------------------------------

def _b64(v: Any) -> bytes:
    try:
        return base64.b64decode(s(v), validate=True)
    except (binascii.Error, ValueError):
        # decoding already rejected malformed base64 with a 400; count it raw
        return s(v).encode()


def secret_data(obj: dict[str, Any]) -> dict[str, bytes]:
    """The secret's bytes as upstream's internal object holds them: data overlaid with stringData."""
    out = {k: _b64(v) for k, v in d(obj.get("data")).items()}
    for k, v in d(obj.get("stringData")).items():
        out[k] = s(v).encode()
    return out


def _secret_type_checks(obj: dict[str, Any], data: dict[str, bytes]) -> list[Cause]:
    stype = s(obj.get("type"))
    causes: list[Cause] = []
    if stype == "kubernetes.io/service-account-token":
        # only the SA name is required; the token controller fills in the rest later
        if not s(d(d(obj.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name")):
            causes.append(field_required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            causes.append(field_required(f"data[{key}]"))
        else:
            err = unmarshal_object_error(data[key])
            if err:
                causes.append(field_invalid(f"data[{key}]", "<secret contents redacted>", err))
    elif stype == "kubernetes.io/basic-auth":
        # either key may be empty, but at least one must be present
        if "username" not in data and "password" not in data:
            causes += [field_required("data[username]"), field_required("data[password]")]
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            causes.append(field_required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(field_required(f"data[{key}]"))
    return causes


def secret(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes: list[Cause] = []
    data = secret_data(obj)
    if old is None:
        causes += validate_object_meta(m, True, names.name_is_dns_subdomain)
    else:
        causes += validate_object_meta_update(m, d(old.get("metadata")))
        causes += immutable("type", s(obj.get("type")), s(old.get("type")))
        if old.get("immutable") is True:
            if obj.get("immutable") is not True:
                causes.append(field_forbidden("immutable", IMMUTABLE_SET))
            if data != secret_data(old):
                causes.append(field_forbidden("data", IMMUTABLE_SET))
    total = 0
    for k in sorted(data):
        causes += _map_keys("data", [k])
        total += len(data[k])
    if total > MAX_SECRET_SIZE:
        causes.append(field_too_long("data", MAX_SECRET_SIZE))
    return causes + _secret_type_checks(obj, data)


# --- ServiceAccount ------------------------------------------------------------------------------

def serviceaccount(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return validate_meta(obj, old, True, names.name_is_dns_subdomain)


# --- Resources and quantities ------------------------------------------------------------------

_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}


def _quantity(path: str, value: Any, *, positive: bool = False) -> list[Cause]:
    q = quantity.parse(value)
    if q is None:
        return [field_invalid(path, quantity.render(value), quantity.QUANTITY_ERROR)]
    if q < 0:
        return [field_invalid(path, quantity.render(value), "must be greater than or equal to 0")]
    if positive and q == 0:
        return [field_invalid(path, quantity.render(value), "must be greater than zero")]
    return []


def _resource_name(path: str, name: str) -> list[Cause]:
    causes = [field_invalid(path, name, m) for m in names.is_qualified_name(name)]
    if not causes and "/" not in name and name not in _STANDARD_CONTAINER_RESOURCES \
            and not name.startswith("hugepages-") and not name.startswith("requests.") \
            and not name.startswith("limits."):
        causes.append(field_invalid(path, name, "must be a standard resource for containers"))
    return causes


def resource_requirements(path: str, res: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    limits, requests = d(res.get("limits")), d(res.get("requests"))
    for kind, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            p = f"{path}.{kind}[{name}]"
            causes += _resource_name(p, name)
            causes += _quantity(p, values[name])
    for name in sorted(requests):
        if name in limits:
            rq, lq = quantity.parse(requests[name]), quantity.parse(limits[name])
            if rq is not None and lq is not None and rq > lq:
                causes.append(field_invalid(
                    f"{path}.requests[{name}]", quantity.render(requests[name]),
                    f"must be less than or equal to {name} limit of {quantity.render(limits[name])}"))
    return causes


# --- Pod -----------------------------------------------------------------------------------------

def _ports(path: str, ports: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, p in enumerate(ports):
        p = d(p)
        causes += unique_item_name(path, i, s(p.get("name")), seen, names.is_valid_port_name, required=False)
        cp = p.get("containerPort")
        if not cp:
            causes.append(field_required(f"{path}[{i}].containerPort"))
        elif isinstance(cp, int) and (errs := names.is_valid_port_num(cp)):
            causes += [field_invalid(f"{path}[{i}].containerPort", cp, m) for m in errs]
        hp = p.get("hostPort")
        if isinstance(hp, int) and hp != 0 and (errs := names.is_valid_port_num(hp)):
            causes += [field_invalid(f"{path}[{i}].hostPort", hp, m) for m in errs]
        proto = s(p.get("protocol"))
        if not proto:
            causes.append(field_required(f"{path}[{i}].protocol"))
        elif proto not in _PROTOCOLS:
            causes.append(field_not_supported(f"{path}[{i}].protocol", proto, _PROTOCOLS))
    return causes


def _env(path: str, env: list[Any]) -> list[Cause]:
    causes: list[Cause] = []
    for i, e in enumerate(env):
        e = d(e)
        name = s(e.get("name"))
        if not name:
            causes.append(field_required(f"{path}[{i}].name"))
        elif errs := names.is_relaxed_env_var_name(name):
            causes += [field_invalid(f"{path}[{i}].name", name, m) for m in errs]
        if "valueFrom" in e:
            ip, vf = f"{path}[{i}]", d(e.get("valueFrom"))
            sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef",
                                   "fileKeyRef") if vf.get(k) is not None]
            if len(sources) > 1:
                causes.append(field_invalid(f"{ip}.valueFrom", "",
                                            "may not have more than one field specified at a time"))
            elif not sources:
                causes.append(field_required(
                    f"{ip}.valueFrom",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
            if s(e.get("value")):
                causes.append(field_invalid(f"{ip}.valueFrom", "", "may not be specified when `value` is not empty"))
    return causes


def _volume_mounts(path: str, index: int, mounts: list[Any], volumes: set[str]) -> list[Cause]:
    """The volumeMounts of container `index` of the list at `path` (its path is built only for a cause)."""
    causes: list[Cause] = []
    paths: set[str] = set()
    for i, vm in enumerate(mounts):
        if not isinstance(vm, dict):
            vm = {}
        # s() inlined (a non-string counts as empty): every admitted pod's containers mount the token volume.
        name, mp = vm.get("name"), vm.get("mountPath")
        if not isinstance(name, str):
            name = ""
        if not isinstance(mp, str):
            mp = ""
        if not name:
            causes.append(field_required(f"{path}[{index}].volumeMounts[{i}].name"))
        elif name not in volumes:
            causes.append(field_not_found(f"{path}[{index}].volumeMounts[{i}].name", name))
        if not mp:
            causes.append(field_required(f"{path}[{index}].volumeMounts[{i}].mountPath"))
        elif mp in paths:
            causes.append(field_invalid(f"{path}[{index}].volumeMounts[{i}].mountPath", mp, "must be unique"))
        paths.add(mp)
    return causes


_SECCOMP_TYPES = ["Localhost", "RuntimeDefault", "Unconfined"]
_APPARMOR_TYPES = ["Localhost", "RuntimeDefault", "Unconfined"]
_PROC_MOUNT_TYPES = ["Default", "Unmasked"]
_FS_GROUP_CHANGE_POLICIES = ["Always", "OnRootMismatch"]
_SUPPLEMENTAL_GROUPS_POLICIES = ["Merge", "Strict"]
_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$"
_SYSCTL_RE = re.compile(_SYSCTL_FMT)
_SYSCTL_MAX_LENGTH = 253
# utilsysctl's namespaced sysctls: which host namespace a sysctl lives in.
_IPC_SYSCTL_PREFIXES = ("kernel.shm", "kernel.msg", "fs.mqueue.")
_MAX_GMSA_SPEC_KIB = 64
_MAX_RUN_AS_DOMAIN = 256
_MAX_RUN_AS_USER = 104
_CTRL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")
_USER_DOTS_SPACES_RE = re.compile(r"^[\. ]+\Z")
_USER_BAD_CHARS_RE = re.compile(r'["/\\:;|=,+*?<>@\[\]]')
# A runAsUserName domain is a NetBios name or a DNS name.
_NETBIOS_RE = re.compile(r'^[^\\/:*?"<>|.][^\\/:*?"<>|]{0,14}\Z')
_DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_WINDOWS_DOMAIN_DNS_RE = re.compile(f"^{_DNS_LABEL}(?:\\.{_DNS_LABEL})*\\Z")
_SELINUX_CHANGE_POLICIES = ["MountOption", "Recursive"]
_OS_NAMES = ["linux", "windows"]
_WINDOWS_POD_FORBIDDEN = (  # validateWindows: pod-level fields with no meaning on Windows, in upstream's order
    "securityContext.appArmorProfile", "securityContext.seLinuxOptions", "hostUsers", "hostPID", "hostIPC",
    "securityContext.seccompProfile", "securityContext.fsGroup", "securityContext.fsGroupChangePolicy",
    "securityContext.sysctls", "shareProcessNamespace", "securityContext.runAsUser", "securityContext.runAsGroup",
    "securityContext.supplementalGroups", "securityContext.supplementalGroupsPolicy",
    "securityContext.seLinuxChangePolicy")
# Upstream's internal types hold these as plain bools or a slice: only true or non-empty counts as set.
_WINDOWS_SET_WHEN_TRUTHY = frozenset({"hostPID", "hostIPC", "sysctls"})
_WINDOWS_CONTAINER_FORBIDDEN = ("appArmorProfile", "seLinuxOptions", "seccompProfile", "capabilities",
                                "readOnlyRootFilesystem", "privileged", "allowPrivilegeEscalation", "procMount",
                                "runAsUser", "runAsGroup")


@dataclass(frozen=True)
class PodOptions:
    """What the server's flags change in pod validation (upstream's capabilities)."""

    # --allow-privileged: false refuses privileged and hostProcess containers.
    allow_privileged: bool = True


DEFAULT_POD_OPTIONS = PodOptions()
# The pod annotations kept from before the securityContext fields (read by old nodes).
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_CONTAINER_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _go_ptr(type_name: str, v: Any) -> str:
    # %#v prints a set pointer as its address (volatile upstream); a fixed one stands for it here.
    return f"(*{type_name})(nil)" if v is None else f"(*{type_name})(0xc000000000)"


def _seccomp_struct(sp: dict[str, Any]) -> _GoText:
    return _GoText(f"core.SeccompProfile{{Type:{json.dumps(s(sp.get('type')))}, "
                   f"LocalhostProfile:{_go_ptr('string', sp.get('localhostProfile'))}}}")


def _security_context_struct(sc: dict[str, Any]) -> _GoText:
    fields = (("Capabilities", "core.Capabilities"), ("Privileged", "bool"), ("SELinuxOptions", "core.SELinuxOptions"),
              ("WindowsOptions", "core.WindowsSecurityContextOptions"), ("RunAsUser", "int64"),
              ("RunAsGroup", "int64"), ("RunAsNonRoot", "bool"), ("ReadOnlyRootFilesystem", "bool"),
              ("AllowPrivilegeEscalation", "bool"), ("ProcMount", "core.ProcMountType"),
              ("SeccompProfile", "core.SeccompProfile"), ("AppArmorProfile", "core.AppArmorProfile"))
    body = ", ".join(f"{f}:{_go_ptr(t, sc.get(f[0].lower() + f[1:] if f != 'SELinuxOptions' else 'seLinuxOptions'))}"
                     for f, t in fields)
    return _GoText(f"core.SecurityContext{{{body}}}")


def _local_descending_path(path: str, target: str) -> list[Cause]:
    """validateLocalDescendingPath: relative, without '..' segments."""
    causes: list[Cause] = []
    if target.startswith("/"):
        causes.append(field_invalid(path, target, "must be a relative path"))
    if ".." in target.split("/"):
        causes.append(field_invalid(path, target, "must not contain '..'"))
    return causes


def _id_range(path: str, v: Any) -> list[Cause]:
    """IsValidUserID / IsValidGroupID: 0 to MaxInt32."""
    if isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= _MAX_INT32:
        return [field_invalid(path, v, names.inclusive_range_error(0, _MAX_INT32))]
    return []


def _seccomp_profile(path: str, sp: Any) -> list[Cause]:
    """validateSeccompProfileField; `path` is the securityContext's."""
    if not isinstance(sp, dict):
        return []
    t, lp = s(sp.get("type")), sp.get("localhostProfile")
    if lp is None and t in _SECCOMP_TYPES and t != "Localhost":
        return []  # the usual RuntimeDefault (or Unconfined) profile
    path += ".seccompProfile"
    causes: list[Cause] = []
    if not t:
        causes.append(field_required(f"{path}.type", "type is required when seccompProfile is set"))
    elif t not in _SECCOMP_TYPES:
        causes.append(field_not_supported(f"{path}.type", t, _SECCOMP_TYPES))
    if t == "Localhost":
        if lp is None:
            causes.append(field_required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost"))
        else:
            causes += _local_descending_path(f"{path}.localhostProfile", s(lp))
    elif lp is not None:
        causes.append(field_invalid(f"{path}.localhostProfile", _seccomp_struct(sp),
                                    "can only be set when seccomp type is Localhost"))
    return causes


def apparmor_profile(path: str, ap: Any) -> list[Cause]:
    """ValidateAppArmorProfileField."""
    if not isinstance(ap, dict):
        return []
    t, lp = s(ap.get("type")), ap.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            return [field_required(f"{path}.localhostProfile", "must be set when AppArmor type is Localhost")]
        lp = s(lp)
        causes: list[Cause] = []
        if lp.strip() != lp:
            causes.append(field_invalid(f"{path}.localhostProfile", lp, "must not be padded with whitespace"))
        elif not lp:
            causes.append(field_required(f"{path}.localhostProfile", "must be set when AppArmor type is Localhost"))
        if len(lp.encode()) > 4095:  # PATH_MAX - 1
            causes.append(field_too_long(f"{path}.localhostProfile", 4095))
        return causes
    if t in ("RuntimeDefault", "Unconfined"):
        if lp is not None:
            return [field_invalid(f"{path}.localhostProfile", s(lp), "can only be set when AppArmor type is Localhost")]
        return []
    if not t:
        return [field_required(f"{path}.type", "type is required when appArmorProfile is set")]
    return [field_not_supported(f"{path}.type", t, _APPARMOR_TYPES)]


def _windows_options(path: str, wo: Any) -> list[Cause]:
    """validateWindowsSecurityContextOptions (the runAsUserName domain's NetBios/DNS format aside)."""
    if not isinstance(wo, dict):
        return []
    causes: list[Cause] = []
    spec_name = wo.get("gmsaCredentialSpecName")
    if spec_name is not None:
        causes += [field_invalid(f"{path}.gmsaCredentialSpecName", s(spec_name), m)
                   for m in names.is_dns1123_subdomain(s(spec_name))]
    spec = wo.get("gmsaCredentialSpec")
    if spec is not None:
        if not s(spec):
            causes.append(field_invalid(f"{path}.gmsaCredentialSpec", "", "gmsaCredentialSpec cannot be an empty string"))
        elif len(s(spec).encode()) > _MAX_GMSA_SPEC_KIB * 1024:
            causes.append(field_invalid(f"{path}.gmsaCredentialSpec", s(spec),
                                        f"gmsaCredentialSpec size must be under {_MAX_GMSA_SPEC_KIB} KiB"))
    user_name = wo.get("runAsUserName")
    if user_name is None:
        return causes
    un, p = s(user_name), f"{path}.runAsUserName"
    parts = un.split("\\")
    if not un:
        return causes + [field_invalid(p, un, "runAsUserName cannot be an empty string")]
    if _CTRL_CHARS_RE.search(un):
        return causes + [field_invalid(p, un, "runAsUserName cannot contain control characters")]
    if len(parts) > 2:
        return causes + [field_invalid(p, un, "runAsUserName cannot contain more than one backslash")]
    domain, user = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if len(domain) >= _MAX_RUN_AS_DOMAIN:
        causes.append(field_invalid(p, un, f"runAsUserName's Domain length must be under {_MAX_RUN_AS_DOMAIN} characters"))
    if len(parts) == 2 and not (_NETBIOS_RE.match(domain) or _WINDOWS_DOMAIN_DNS_RE.match(domain)):
        causes.append(field_invalid(p, un, "runAsUserName's Domain doesn't match the NetBios nor the DNS format"))
    if not user:
        causes.append(field_invalid(p, un, "runAsUserName's User cannot be empty"))
    elif len(user) > _MAX_RUN_AS_USER:
        causes.append(field_invalid(p, un, f"runAsUserName's User length must not be longer than {_MAX_RUN_AS_USER} characters"))
    if _USER_DOTS_SPACES_RE.match(user):
        causes.append(field_invalid(p, un, "runAsUserName's User cannot contain only periods or spaces"))
    if _USER_BAD_CHARS_RE.search(user):
        causes.append(field_invalid(p, un, 'runAsUserName\'s User cannot contain the following characters: "/\\:;|=,+*?<>@[]'))
    return causes


def _sysctl_dotted(name: str) -> str:
    """utilsysctl.NormalizeName: a name whose first separator is '/' uses '/' and '.' the other way round."""
    first = next((ch for ch in name if ch in "./"), ".")
    return name if first == "." else name.translate(str.maketrans("./", "/."))


def _sysctls(path: str, psc: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    """validateSysctls on create: names well formed and unique, none of a host namespace the pod shares."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, sysctl in enumerate(lst(psc.get("sysctls"))):
        name, p = s(d(sysctl).get("name")), f"{path}[{i}].name"
        if not name:
            causes.append(field_required(p))
        elif len(name) > _SYSCTL_MAX_LENGTH or not _SYSCTL_RE.match(name):
            causes.append(field_invalid(p, name, f"must have at most {_SYSCTL_MAX_LENGTH} characters and match "
                                                 f"regex {_SYSCTL_FMT}"))
        elif name in seen:
            causes.append(field_duplicate(p, name))
        dotted = _sysctl_dotted(name)
        if spec.get("hostNetwork") is True and dotted.startswith("net."):
            causes.append(field_invalid(p, name, "may not be specified when 'hostNetwork' is true"))
        elif spec.get("hostIPC") is True and (dotted == "kernel.sem" or dotted.startswith(_IPC_SYSCTL_PREFIXES)):
            causes.append(field_invalid(p, name, "may not be specified when 'hostIPC' is true"))
        seen.add(name)
    return causes


def _pod_security_context(spec_path: str, spec: dict[str, Any]) -> list[Cause]:
    """validatePodSpecSecurityContext."""
    psc = spec.get("securityContext")
    if not isinstance(psc, dict):
        return []
    path = f"{spec_path}.securityContext"
    causes: list[Cause] = []
    # Each check below is skipped when its field is unset (it would find nothing), so no path is built.
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        v = psc.get(key)
        if v is not None:
            causes += _id_range(f"{path}.{key}", v)
    if psc.get("supplementalGroups"):
        for i, g in enumerate(lst(psc.get("supplementalGroups"))):
            causes += _id_range(f"{path}.supplementalGroups[{i}]", g)
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        causes.append(field_invalid(f"{path}.shareProcessNamespace", True,
                                    "ShareProcessNamespace and HostPID cannot both be enabled"))
    if psc.get("sysctls"):
        causes += _sysctls(f"{path}.sysctls", psc, spec)
    v = psc.get("fsGroupChangePolicy")
    if v is not None and v not in _FS_GROUP_CHANGE_POLICIES:
        causes.append(field_not_supported(f"{path}.fsGroupChangePolicy", v, _FS_GROUP_CHANGE_POLICIES))
    causes += _seccomp_profile(path, psc.get("seccompProfile"))
    if psc.get("windowsOptions") is not None:
        causes += _windows_options(f"{path}.windowsOptions", psc.get("windowsOptions"))
    if psc.get("appArmorProfile") is not None:
        causes += apparmor_profile(f"{path}.appArmorProfile", psc.get("appArmorProfile"))
    policy = psc.get("supplementalGroupsPolicy")
    if policy is not None and policy not in _SUPPLEMENTAL_GROUPS_POLICIES:
        causes.append(field_not_supported(f"{path}.supplementalGroupsPolicy", policy, _SUPPLEMENTAL_GROUPS_POLICIES))
    change = psc.get("seLinuxChangePolicy")
    if change is not None and change not in _SELINUX_CHANGE_POLICIES:
        causes.append(field_not_supported(f"{path}.seLinuxChangePolicy", change, _SELINUX_CHANGE_POLICIES))
    return causes


def _security_context(path: str, sc: Any, host_users: bool, opts: PodOptions) -> list[Cause]:
    """ValidateSecurityContext (a container's)."""
    if not isinstance(sc, dict):
        return []
    causes: list[Cause] = []
    if sc.get("privileged") is True and not opts.allow_privileged:
        causes.append(field_forbidden(f"{path}.privileged", "disallowed by cluster policy"))
    # Unset fields are skipped (their checks would find nothing), so no path is built for them.
    for key in ("runAsUser", "runAsGroup"):
        v = sc.get(key)
        if v is not None:
            causes += _id_range(f"{path}.{key}", v)
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in _PROC_MOUNT_TYPES:
            causes.append(field_not_supported(f"{path}.procMount", pm, _PROC_MOUNT_TYPES))
        if host_users and pm == "Unmasked":
            causes.append(field_invalid(f"{path}.procMount", pm, "`hostUsers` must be false to use `Unmasked`"))
    causes += _seccomp_profile(path, sc.get("seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            causes.append(field_invalid(path, _security_context_struct(sc),
                                        "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
        added = d(sc.get("capabilities")).get("add")
        for cap in lst(added) if added else ():
            if cap == "CAP_SYS_ADMIN":
                causes.append(field_invalid(path, _security_context_struct(sc), "cannot set `allowPrivilegeEscalation` "
                                            "to false and `capabilities.Add` CAP_SYS_ADMIN"))
    if sc.get("windowsOptions") is not None:
        causes += _windows_options(f"{path}.windowsOptions", sc.get("windowsOptions"))
    if sc.get("appArmorProfile") is not None:
        causes += apparmor_profile(f"{path}.appArmorProfile", sc.get("appArmorProfile"))
    return causes


CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")  # VisitContainersWithPath's order


def _all_containers(path: str, spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """VisitContainersWithPath: init containers, containers, ephemeral containers, with their paths."""
    return [(f"{path}.{key}[{i}]", d(c)) for key in CONTAINER_LISTS for i, c in enumerate(lst(spec.get(key)))]


def _seccomp_annotation(path: str, value: str) -> list[Cause]:
    """ValidateSeccompProfile (the annotation form)."""
    if value in ("runtime/default", "docker/default", "unconfined"):
        return []
    if value.startswith("localhost/"):
        return _local_descending_path(path, value[len("localhost/"):])
    return [field_invalid(path, value, "must be a valid seccomp profile")]


def pod_specific_annotations(path: str, annotations: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    """ValidatePodSpecificAnnotations' seccomp and AppArmor annotations (keys sorted: Go's map order is random)."""
    if not annotations:
        return []
    causes: list[Cause] = []
    if SECCOMP_POD_ANNOTATION in annotations:
        causes += _seccomp_annotation(f"{path}.{SECCOMP_POD_ANNOTATION}", s(annotations[SECCOMP_POD_ANNOTATION]))
    for k in sorted(annotations):
        if k.startswith(SECCOMP_CONTAINER_PREFIX):
            causes += _seccomp_annotation(f"{path}.{k}", s(annotations[k]))
    container_names = {s(c.get("name")) for _, c in _all_containers(path, spec)}
    for k in sorted(annotations):
        if not k.startswith(APPARMOR_CONTAINER_PREFIX):
            continue
        name, v = k[len(APPARMOR_CONTAINER_PREFIX):], s(annotations[k])
        if name not in container_names:
            causes.append(field_invalid(f"{path}[{k}]", name, "container not found"))
        if v not in ("", "runtime/default", "unconfined") and not v.startswith("localhost/"):
            causes.append(field_invalid(f"{path}[{k}]", v, f"invalid AppArmor profile name: {json.dumps(v)}"))
    return causes


def _seccomp_match(path: str, annotation: str, sp: dict[str, Any]) -> list[Cause]:
    """validateSeccompAnnotationsAndFieldsMatch."""
    t = s(sp.get("type"))
    if (t == "Unconfined" and annotation != "unconfined"
            or t == "RuntimeDefault" and annotation not in ("runtime/default", "docker/default")
            or t == "Localhost" and not annotation.startswith("localhost/")):
        return [field_forbidden(f"{path}.type", "seccomp type in annotation and field must match")]
    if t == "Localhost" and annotation[len("localhost/"):] != sp.get("localhostProfile"):
        return [field_forbidden(f"{path}.localhostProfile", "seccomp profile in annotation and field must match")]
    return []


def _apparmor_match(path: str, annotation: str, ap: dict[str, Any]) -> list[Cause]:
    t = s(ap.get("type"))
    if (t == "Unconfined" and annotation != "unconfined"
            or t == "RuntimeDefault" and annotation != "runtime/default"
            or t == "Localhost" and not annotation.startswith("localhost/")):
        return [field_forbidden(f"{path}.type", "apparmor type in annotation and field must match")]
    if t == "Localhost" and annotation[len("localhost/"):] != ap.get("localhostProfile"):
        return [field_forbidden(f"{path}.localhostProfile", "apparmor profile in annotation and field must match")]
    return []


def annotations_match_fields(path: str, annotations: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    """validateSeccompAnnotationsAndFields and validateAppArmorAnnotationsAndFieldsMatchOnCreate: where both an
    annotation and its field are set, they must say the same."""
    if not annotations:
        return []
    causes: list[Cause] = []
    psc = d(spec.get("securityContext"))
    pod_seccomp = psc.get("seccompProfile")
    if isinstance(pod_seccomp, dict) and SECCOMP_POD_ANNOTATION in annotations:
        causes += _seccomp_match(f"{path}.securityContext.seccompProfile", s(annotations[SECCOMP_POD_ANNOTATION]),
                                 pod_seccomp)
    containers = _all_containers(path, spec)
    for cpath, c in containers:
        sp = d(c.get("securityContext")).get("seccompProfile")
        key = SECCOMP_CONTAINER_PREFIX + s(c.get("name"))
        if isinstance(sp, dict) and key in annotations:
            causes += _seccomp_match(f"{cpath}.securityContext.seccompProfile", s(annotations[key]), sp)
    if d(spec.get("os")).get("name") == "windows":
        return causes
    for cpath, c in containers:
        ap = d(c.get("securityContext")).get("appArmorProfile") or psc.get("appArmorProfile")
        key = APPARMOR_CONTAINER_PREFIX + s(c.get("name"))
        if isinstance(ap, dict) and key in annotations:
            causes += _apparmor_match(f"{cpath}.securityContext.appArmorProfile", s(annotations[key]), ap)
    return causes


def _containers(path: str, containers: list[Any], volumes: set[str], seen: set[str],
                *, require: bool, host_users: bool, opts: PodOptions) -> list[Cause]:
    causes: list[Cause] = []
    if require and not containers:
        return [field_required(path)]
    for i, c in enumerate(containers):
        c = d(c)
        causes += unique_item_name(path, i, s(c.get("name")), seen, names.is_dns1123_label)
        image = s(c.get("image"))
        if not image:
            causes.append(field_required(f"{path}[{i}].image"))
        elif image != image.strip():
            causes.append(field_invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace"))
        tmp = c.get("terminationMessagePolicy")
        if tmp not in _TERMINATION_MESSAGE_POLICIES:
            causes.append(_not_one_of(f"{path}[{i}].terminationMessagePolicy", tmp, _TERMINATION_MESSAGE_POLICIES,
                                      "must be 'File' or 'FallbackToLogsOnError'"))
        # Empty or unset lists and maps are skipped (their checks would find nothing), so no path is built.
        if c.get("ports"):
            causes += _ports(f"{path}[{i}].ports", lst(c.get("ports")))
        if c.get("env"):
            causes += _env(f"{path}[{i}].env", lst(c.get("env")))
        if mounts := c.get("volumeMounts"):
            causes += _volume_mounts(path, i, lst(mounts), volumes)
        pull = c.get("imagePullPolicy")
        if pull not in _PULL_POLICIES:
            causes.append(_not_one_of(f"{path}[{i}].imagePullPolicy", pull, _PULL_POLICIES))
        if c.get("resources"):
            causes += resource_requirements(f"{path}[{i}].resources", d(c.get("resources")))
        if isinstance(c.get("securityContext"), dict):
            causes += _security_context(f"{path}[{i}].securityContext", c.get("securityContext"), host_users, opts)
    return causes


def _host_process(owner: Any) -> Any:
    """securityContext.windowsOptions.hostProcess of a pod spec or a container; None when unset."""
    sc = owner.get("securityContext") if isinstance(owner, dict) else None
    wo = sc.get("windowsOptions") if isinstance(sc, dict) else None
    return wo.get("hostProcess") if isinstance(wo, dict) else None


def _windows_host_process(path: str, spec: dict[str, Any], opts: PodOptions) -> list[Cause]:
    """validateWindowsHostProcessPod: all containers hostProcess or none, with hostNetwork, and only where
    privileged containers are allowed."""
    causes: list[Cause] = []
    pod_hp = _host_process(spec)
    containers = host_process = 0
    for key in CONTAINER_LISTS:
        for i, c in enumerate(lst(spec.get(key))):
            containers += 1
            hp = _host_process(c)
            if isinstance(pod_hp, bool) and isinstance(hp, bool) and pod_hp != hp:
                causes.append(field_invalid(f"{path}.{key}[{i}].securityContext.windowsOptions.hostProcess", hp,
                                            f"pod hostProcess value must be identical if both are specified, was "
                                            f"{str(pod_hp).lower()}"))
            if hp is True or (hp is None and pod_hp is True):
                host_process += 1
    if host_process:
        if host_process != containers:
            causes.append(field_invalid(path, "", "If pod contains any hostProcess containers then all containers "
                                                  "must be HostProcess containers"))
        if spec.get("hostNetwork") is not True:
            causes.append(field_invalid(f"{path}.hostNetwork", False,
                                        "hostNetwork must be true if pod contains any hostProcess containers"))
        if not opts.allow_privileged:
            causes.append(field_forbidden(path, "hostProcess containers are disallowed by cluster policy"))
    return causes


def _os(path: str, spec: dict[str, Any]) -> list[Cause]:
    """validateOS, then validateLinux or validateWindows: fields the named OS cannot honour are refused."""
    name = s(d(spec.get("os")).get("name"))
    if not name:
        return [field_required(f"{path}.os.name", "cannot be empty")]
    if name not in _OS_NAMES:
        return [field_not_supported(f"{path}.os", name, _OS_NAMES)]
    psc = d(spec.get("securityContext"))
    containers = _all_containers(path, spec)
    if name == "linux":
        causes = ([field_forbidden(f"{path}.securityContext.windowsOptions", "windows options cannot be set for a "
                                   "linux pod")] if psc.get("windowsOptions") is not None else [])
        return causes + [field_forbidden(f"{cpath}.securityContext.windowsOptions",
                                         "windows options cannot be set for a linux pod")
                         for cpath, c in containers if d(c.get("securityContext")).get("windowsOptions") is not None]
    causes = []
    for key in _WINDOWS_POD_FORBIDDEN:
        owner, _, leaf = key.rpartition(".")
        v = (psc if owner else spec).get(leaf)
        if (bool(v) if leaf in _WINDOWS_SET_WHEN_TRUTHY else v is not None):
            causes.append(field_forbidden(f"{path}.{key}", "cannot be set for a windows pod"))
    for cpath, c in containers:
        sc = c.get("securityContext")
        if isinstance(sc, dict):
            causes += [field_forbidden(f"{cpath}.securityContext.{key}", "cannot be set for a windows pod")
                       for key in _WINDOWS_CONTAINER_FORBIDDEN if sc.get(key) is not None]
    return causes


def _volumes(path: str, volumes: list[Any]) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, v in enumerate(volumes):
        if not isinstance(v, dict):
            v = {}
        name = v.get("name")
        causes += unique_item_name(path, i, name if isinstance(name, str) else "", seen, names.is_dns1123_label)
        # The volume's own few keys, not a probe of every source; counted first (no list for the usual single
        # source), listed in _VOLUME_SOURCES' order when there is not exactly one.
        count = 0
        for k, value in v.items():
            if value is not None and k in _VOLUME_SOURCE_ORDER:
                count += 1
        if count != 1:
            sources = [k for k in v if k in _VOLUME_SOURCE_ORDER and v[k] is not None]
            if not sources:
                causes.append(field_required(f"{path}[{i}]", "must specify a volume type"))
            sources.sort(key=_VOLUME_SOURCE_ORDER.__getitem__)
            for extra in sources[1:]:
                causes.append(field_forbidden(f"{path}[{i}].{extra}", "may not specify more than 1 volume type"))
    return causes, seen


def _not_one_of(path: str, value: Any, allowed: list[str], required_detail: str = "") -> Cause:
    """Why a required field's value is not one of `allowed` (checked first, by the caller): it is
    missing, or it is not supported."""
    if s(value):
        return field_not_supported(path, value, allowed)
    return field_required(path, required_detail)


def _tolerations(path: str, tolerations: list[Any]) -> list[Cause]:
    """The tolerations of the pod spec at `path` (their paths are built only for a cause)."""
    causes: list[Cause] = []
    for i, t in enumerate(tolerations):
        if not isinstance(t, dict):
            t = {}
        # s() inlined (a non-string counts as empty): this runs for every admitted pod's two tolerations.
        key, op, effect = t.get("key"), t.get("operator"), t.get("effect")
        if not isinstance(key, str):
            key = ""
        if not isinstance(op, str):
            op = ""
        if key:
            if errs := names.qualified_name_errors(key):
                causes += [field_invalid(f"{path}.tolerations[{i}].key", key, m) for m in errs]
        elif op != "Exists":
            causes.append(field_invalid(f"{path}.tolerations[{i}].operator", op,
                                        "operator must be Exists when `key` is empty, which means \"match all "
                                        "values and all keys\""))
        if op and op not in _TOLERATION_OPERATOR_SET:
            causes.append(field_not_supported(f"{path}.tolerations[{i}].operator", op, _TOLERATION_OPERATORS))
        if op == "Exists" and (value := t.get("value")) and isinstance(value, str):
            causes.append(field_invalid(f"{path}.tolerations[{i}].operator", value,
                                        "value must be empty when `operator` is 'Exists'"))
        if not isinstance(effect, str):
            effect = ""
        if effect and effect not in _TAINT_EFFECT_SET:
            causes.append(field_not_supported(f"{path}.tolerations[{i}].effect", effect, _TAINT_EFFECTS))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(field_invalid(f"{path}.tolerations[{i}].effect", effect,
                                        "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return causes


def pod_spec(path: str, spec: dict[str, Any], opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    """ValidatePodSpec's commonly exercised rules."""
    causes, vols = _volumes(f"{path}.volumes", lst(spec.get("volumes")))
    seen: set[str] = set()
    host_users = spec.get("hostUsers") is not False
    causes += _containers(f"{path}.containers", lst(spec.get("containers")), vols, seen, require=True,
                          host_users=host_users, opts=opts)
    if spec.get("initContainers"):
        causes += _containers(f"{path}.initContainers", lst(spec.get("initContainers")), vols, seen, require=False,
                              host_users=host_users, opts=opts)
    if spec.get("ephemeralContainers"):
        for i, c in enumerate(lst(spec.get("ephemeralContainers"))):
            causes += _security_context(f"{path}.ephemeralContainers[{i}].securityContext",
                                        d(c).get("securityContext"), host_users, opts)
    rp = spec.get("restartPolicy")
    if rp not in _RESTART_POLICIES:
        causes.append(_not_one_of(f"{path}.restartPolicy", rp, _RESTART_POLICIES))
    dp = spec.get("dnsPolicy")
    if dp not in _DNS_POLICIES:
        causes.append(_not_one_of(f"{path}.dnsPolicy", dp, _DNS_POLICIES))
    # A negative terminationGracePeriodSeconds is accepted (and treated as 1) with a warning, as upstream.
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not 1 <= ads <= _MAX_INT32:
        causes.append(field_invalid(f"{path}.activeDeadlineSeconds", ads, names.inclusive_range_error(1, _MAX_INT32)))
    for key in ("serviceAccountName", "nodeName"):
        v = spec.get(key)
        if v and isinstance(v, str) and (errs := names.is_dns1123_subdomain(v)):
            causes += [field_invalid(f"{path}.{key}", v, m) for m in errs]
    for key in ("hostname", "subdomain"):
        v = spec.get(key)
        if v and isinstance(v, str) and (errs := names.is_dns1123_label(v)):
            causes += [field_invalid(f"{path}.{key}", v, m) for m in errs]
    if spec.get("nodeSelector"):
        causes += validate_labels(d(spec.get("nodeSelector")), f"{path}.nodeSelector")
    causes += _pod_security_context(path, spec)
    causes += _windows_host_process(path, spec, opts)
    if tolerations := spec.get("tolerations"):
        causes += _tolerations(path, lst(tolerations))
    if spec.get("os") is not None:
        causes += _os(path, spec)
    return causes


def pod_template(path: str, template: dict[str, Any], opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    """ValidatePodTemplateSpec: labels/annotations of the template plus its pod spec."""
    tm = d(template.get("metadata"))
    causes = validate_labels(d(tm.get("labels")), f"{path}.metadata.labels")
    annotations, spec = d(tm.get("annotations")), d(template.get("spec"))
    causes += validate_annotations(annotations, f"{path}.metadata.annotations")
    causes += pod_specific_annotations(f"{path}.metadata.annotations", annotations, spec)
    causes += pod_spec(f"{path}.spec", spec, opts)
    causes += annotations_match_fields(f"{path}.spec", annotations, spec)
    if lst(spec.get("ephemeralContainers")):
        causes.append(field_forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod "
                                                                          "template"))
    return causes


def podtemplate(obj: dict[str, Any], old: dict[str, Any] | None,
                opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    return causes + pod_template("template", d(obj.get("template")), opts)


def replicationcontroller(obj: dict[str, Any], old: dict[str, Any] | None,
                          opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    """ValidateReplicationController(Update): the selector is a plain label map and stays mutable."""
    spec = d(obj.get("spec"))
    causes = validate_meta(obj, old, True, names.name_is_dns_subdomain)
    causes += nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = d(spec.get("selector"))
    if not selector:
        causes.append(field_required("spec.selector"))
    if spec.get("replicas") is None:
        causes.append(field_required("spec.replicas"))
    else:
        causes += nonnegative("spec.replicas", spec.get("replicas"))
    template = spec.get("template")
    if not isinstance(template, dict):
        return causes + [field_required("spec.template")]
    tlabels = d(d(template.get("metadata")).get("labels"))
    if selector and any(tlabels.get(k) != v for k, v in selector.items()):
        causes.append(field_invalid("spec.template.metadata.labels", GoJSON(tlabels),
                                    "`selector` does not match template `labels`"))
    causes += pod_template("spec.template", template, opts)
    tspec = d(template.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        causes.append(field_not_supported("spec.template.spec.restartPolicy", rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        causes.append(field_forbidden("spec.template.spec.activeDeadlineSeconds",
                                      "activeDeadlineSeconds in ReplicationController is not Supported"))
    return causes


def _go_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    a = json.dumps(old, indent=1, sort_keys=True).splitlines()
    b = json.dumps(new, indent=1, sort_keys=True).splitlines()
    lines = list(difflib.unified_diff(a, b, lineterm="", n=3))[2:]
    return "\n".join(lines) + "\n" if lines else ""


def _pod_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    spec, old_spec = d(obj.get("spec")), d(old.get("spec"))
    causes: list[Cause] = []
    new_ads, old_ads = spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if isinstance(new_ads, int) and isinstance(old_ads, int) and new_ads > old_ads:
        causes.append(field_invalid("spec.activeDeadlineSeconds", new_ads,
                                    "must be less than or equal to previous value"))
    if old_ads is not None and new_ads is None:
        causes.append(field_invalid("spec.activeDeadlineSeconds", None,
                                    "must not update from a positive integer to nil value"))
    # Compare everything else by copying the mutable fields from the new spec onto the old one.
    munged = copy.deepcopy(old_spec)
    for key in ("containers", "initContainers"):
        new_cs, old_cs = lst(spec.get(key)), lst(munged.get(key))
        if len(new_cs) == len(old_cs):
            for nc, oc in zip(new_cs, old_cs):
                if isinstance(oc, dict) and isinstance(nc, dict):
                    oc["image"] = nc.get("image")
                    if "resources" in nc or "resources" in oc:
                        oc["resources"] = nc.get("resources")
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        if key in spec:
            munged[key] = spec[key]
        else:
            munged.pop(key, None)
    old_tol = lst(old_spec.get("tolerations"))
    new_tol = lst(spec.get("tolerations"))
    if all(t in new_tol for t in old_tol):
        if new_tol:
            munged["tolerations"] = new_tol
        else:
            munged.pop("tolerations", None)
    if munged != spec:
        causes.append(field_forbidden("spec", _POD_UPDATE_FORBIDDEN + "\n" + _go_diff(munged, spec)))
    return causes


def pod(obj: dict[str, Any], old: dict[str, Any] | None, opts: PodOptions = DEFAULT_POD_OPTIONS) -> list[Cause]:
    m = d(obj.get("metadata"))
    if old is None:
        annotations, spec = d(m.get("annotations")), d(obj.get("spec"))
        causes = validate_object_meta(m, True, names.name_is_dns_subdomain)
        causes += pod_specific_annotations("metadata.annotations", annotations, spec)
        causes += pod_spec("spec", spec, opts)
        if lst(spec.get("ephemeralContainers")):
            # Ephemeral containers are added later through the ephemeralcontainers subresource only.
            causes.append(field_forbidden("spec.ephemeralContainers", "cannot be set on create"))
        return causes + annotations_match_fields("spec", annotations, spec)
    causes = validate_object_meta_update(m, d(old.get("metadata")))
    for i, c in enumerate(lst(d(obj.get("spec")).get("containers"))):
        if not s(d(c).get("image")):
            causes.append(field_required(f"spec.containers[{i}].image"))
    return causes + _pod_update(obj, old)


def pod_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    nominated = s(status.get("nominatedNodeName"))
    if nominated:
        causes += [field_invalid("status.nominatedNodeName", nominated, m)
                   for m in names.is_dns1123_subdomain(nominated)]
    old_phase = s(d(old.get("status")).get("phase"))
    phase = s(status.get("phase"))
    if old_phase in ("Succeeded", "Failed") and phase != old_phase:
        causes.append(field_forbidden("status.phase",
                                      f"cannot transition from terminal phase \"{old_phase}\" to \"{phase}\""))
    return causes


# --- Node ----------------------------------------------------------------------------------------

def _cidr(path: str, value: str) -> list[Cause]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [field_invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def node(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    spec = d(obj.get("spec"))
    causes: list[Cause] = []
    if old is None:
        causes += validate_object_meta(m, False, names.name_is_dns_subdomain)
    else:
        causes += validate_object_meta_update(m, d(old.get("metadata")))
        old_spec = d(old.get("spec"))
        old_cidr = s(old_spec.get("podCIDR"))
        if old_cidr and s(spec.get("podCIDR")) != old_cidr:
            causes.append(field_forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" "
                                          "to valid"))
        old_pid = s(old_spec.get("providerID"))
        if old_pid and s(spec.get("providerID")) != old_pid:
            causes.append(field_forbidden("spec.providerID", "node updates may not change providerID except from "
                                          "\"\" to valid"))
    for i, c in enumerate(lst(spec.get("podCIDRs"))):
        causes += _cidr(f"spec.podCIDRs[{i}]", s(c))
    for i, t in enumerate(lst(spec.get("taints"))):
        t = d(t)
        key, effect = s(t.get("key")), s(t.get("effect"))
        if not key:
            causes.append(field_required(f"spec.taints[{i}].key"))
        else:
            causes += [field_invalid(f"spec.taints[{i}].key", key, msg) for msg in names.is_qualified_name(key)]
        if not effect:
            causes.append(field_required(f"spec.taints[{i}].effect"))
        elif effect not in _TAINT_EFFECTS:
            causes.append(field_not_supported(f"spec.taints[{i}].effect", effect, _TAINT_EFFECTS))
    return causes


# --- Event ---------------------------------------------------------------------------------------

def event(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """core/v1 Event: the involved object's namespace must agree with the event's."""
    m = d(obj.get("metadata"))
    if old is not None:
        return validate_object_meta_update(m, d(old.get("metadata")))
    causes = validate_object_meta(m, True, names.name_is_dns_subdomain)
    ns = s(m.get("namespace"))
    inv_ns = s(d(obj.get("involvedObject")).get("namespace"))
    if (not inv_ns and ns not in ("", "default")) or (inv_ns and ns != inv_ns):
        causes.append(field_invalid("involvedObject.namespace", inv_ns, "does not match event.namespace"))
    return causes


def events_v1(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """events.k8s.io/v1 Event: the new-style required fields and size limits."""
    m = d(obj.get("metadata"))
    if old is not None:
        return validate_object_meta_update(m, d(old.get("metadata")))
    causes = validate_object_meta(m, True, names.name_is_dns_subdomain)
    if not obj.get("eventTime"):
        causes.append(field_required("eventTime"))
    for key, limit in (("reportingController", 0), ("reportingInstance", 128), ("action", 128), ("reason", 128)):
        v = s(obj.get(key))
        if not v:
            causes.append(field_required(key))
        elif limit and len(v) > limit:
            causes.append(field_invalid(key, "", f"can have at most {limit} characters"))
    rc = s(obj.get("reportingController"))
    if rc:
        causes += [field_invalid("reportingController", rc, msg) for msg in names.is_qualified_name(rc)]
    if len(s(obj.get("note"))) > 1024:
        causes.append(field_invalid("note", "", "can have at most 1024 characters"))
    etype = s(obj.get("type"))
    if etype not in ("Normal", "Warning"):
        causes.append(field_invalid("type", etype, "has invalid value: " + etype))
    return causes


# --- LimitRange ----------------------------------------------------------------------------------

# LimitRange ordering checks, in upstream's order: (smaller, larger, the field reported, and
# upstream's names for the two values).
_LIMIT_ORDER = (
    ("min", "max", "min", "min value", "max value"),
    ("min", "defaultRequest", "defaultRequest", "min value", "default request value"),
    ("defaultRequest", "max", "defaultRequest", "default request value", "max value"),
    ("defaultRequest", "default", "defaultRequest", "default request value", "default limit value"),
    ("min", "default", "default", "min value", "default value"),
    ("default", "max", "default", "default value", "max value"),
)


def limitrange(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes = (validate_object_meta(m, True, names.name_is_dns_subdomain) if old is None
              else validate_object_meta_update(m, d(old.get("metadata"))))
    for i, limit in enumerate(lst(d(obj.get("spec")).get("limits"))):
        limit = d(limit)
        ip = f"spec.limits[{i}]"
        ltype = s(limit.get("type"))
        groups = {k: d(limit.get(k)) for k in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
        if ltype == "Pod":
            for k in ("default", "defaultRequest"):
                if groups[k]:
                    causes.append(field_forbidden(f"{ip}.{k}", "may not be specified when `type` is 'Pod'"))
        for k, vals in groups.items():
            for rname in sorted(vals):
                p = f"{ip}.{k}[{rname}]"
                causes += [field_invalid(p, rname, msg) for msg in names.is_qualified_name(rname)]
                causes += _quantity(p, vals[rname])
        parsed = {k: {r: quantity.parse(v) for r, v in vals.items()} for k, vals in groups.items()}
        resources = sorted(set().union(*[set(v) for v in groups.values()]))
        for r in resources:
            for lo, hi, reported, lo_name, hi_name in _LIMIT_ORDER:
                a, b = parsed[lo].get(r), parsed[hi].get(r)
                if a is not None and b is not None and a > b:
                    causes.append(field_invalid(
                        f"{ip}.{reported}[{r}]", quantity.render(groups[reported][r]),
                        f"{lo_name} {quantity.render(groups[lo][r])} is greater than {hi_name} "
                        f"{quantity.render(groups[hi][r])}"))
    return causes


# --- ResourceQuota -------------------------------------------------------------------------------

_QUOTA_SCOPES = ["BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating",
                 "PriorityClass", "Terminating", "VolumeAttributesClass"]


def _quota_list(path: str, values: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for rname in sorted(values):
        p = f"{path}[{rname}]"
        causes += [field_invalid(p, rname, msg) for msg in names.is_qualified_name(rname)]
        causes += _quantity(p, values[rname])
    return causes


def resourcequota(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes = (validate_object_meta(m, True, names.name_is_dns_subdomain) if old is None
              else validate_object_meta_update(m, d(old.get("metadata"))))
    spec = d(obj.get("spec"))
    causes += _quota_list("spec.hard", d(spec.get("hard")))
    for i, scope in enumerate(lst(spec.get("scopes"))):
        if scope not in _QUOTA_SCOPES:
            causes.append(field_not_supported(f"spec.scopes[{i}]", scope, _QUOTA_SCOPES))
    return causes


def resourcequota_status(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_object_meta_update(d(obj.get("metadata")), d(old.get("metadata")))
    status = d(obj.get("status"))
    return causes + _quota_list("status.hard", d(status.get("hard"))) + _quota_list("status.used",
                                                                                      d(status.get("used")))


# --- PersistentVolumeClaim -------------------------------------------------------------------------

def _pvc_spec(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    modes = lst(spec.get("accessModes"))
    if not modes:
        causes.append(field_required("spec.accessModes", "at least 1 access mode is required"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(field_not_supported("spec.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(field_forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access modes"))
    sel = d(spec.get("selector"))
    causes += validate_labels(d(sel.get("matchLabels")), "spec.selector.matchLabels")
    requests = d(d(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        causes.append(field_required("spec.resources[storage]"))
    else:
        causes += _quantity("spec.resources[storage]", requests["storage"], positive=True)
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        causes.append(field_not_supported("spec.volumeMode", vm, _VOLUME_MODES))
    sc = s(spec.get("storageClassName"))
    if sc:
        causes += [field_invalid("spec.storageClassName", sc, msg) for msg in names.is_dns1123_subdomain(sc)]
    return causes


def persistentvolumeclaim(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    spec = d(obj.get("spec"))
    if old is None:
        return validate_object_meta(m, True, names.name_is_dns_subdomain) + _pvc_spec(spec)
    causes = validate_object_meta_update(m, d(old.get("metadata"))) + _pvc_spec(spec)
    old_spec = copy.deepcopy(d(old.get("spec")))
    new_spec = copy.deepcopy(spec)
    bound = s(d(old.get("status")).get("phase")) == "Bound"
    for sp in (old_spec, new_spec):
        # a bound claim may grow its storage request; class attributes may change too
        if bound:
            d(sp.get("resources")).pop("requests", None)
        sp.pop("volumeAttributesClassName", None)
    if old_spec != new_spec:
        causes.append(field_forbidden("spec", "spec is immutable after creation except resources.requests and "
                                      "volumeAttributesClassName for bound claims"))
    if bound:
        new_s = quantity.parse(d(d(spec.get("resources")).get("requests")).get("storage"))
        old_s = quantity.parse(d(d(d(old.get("spec")).get("resources")).get("requests")).get("storage"))
        if new_s is not None and old_s is not None and new_s < old_s:
            causes.append(field_forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    return causes


# --- PersistentVolume ----------------------------------------------------------------------------

_RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
# ValidatePersistentVolumeSpec's order; flexVolume counts but is never the "more than 1" one.
_PV_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd", "quobyte",
    "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume", "photonPersistentDisk",
    "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi",
)
_PV_SOURCE_ERROR_PATH = {"cephfs": "cephFS"}


class _GoText(str):
    """A value already rendered as Go's %#v prints it (shown bare in field errors)."""


def _pv_spec(spec: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    modes = lst(spec.get("accessModes"))
    if not modes:
        causes.append(field_required("spec.accessModes"))
    for mode in modes:
        if mode not in _ACCESS_MODES:
            causes.append(field_not_supported("spec.accessModes", mode, _ACCESS_MODES))
    if "ReadWriteOncePod" in modes and any(m in _ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        causes.append(field_forbidden("spec.accessModes", "may not use ReadWriteOncePod with other access modes"))
    capacity = d(spec.get("capacity"))
    if not capacity:
        causes.append(field_required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        shown = _GoText("core.ResourceList(nil)") if not capacity else capacity
        causes.append(field_not_supported("spec.capacity", shown, ["storage"]))
    for name, value in capacity.items():
        causes += _quantity(f"spec.capacity[{name}]", value, positive=True)
    policy = s(spec.get("persistentVolumeReclaimPolicy"))
    if policy and policy not in _RECLAIM_POLICIES:
        causes.append(field_not_supported("spec.persistentVolumeReclaimPolicy", policy, _RECLAIM_POLICIES))
    count = 0
    for source in _PV_SOURCES:
        if spec.get(source) is None:
            continue
        if count and source != "flexVolume":
            causes.append(field_forbidden(f"spec.{_PV_SOURCE_ERROR_PATH.get(source, source)}",
                                          "may not specify more than 1 volume type"))
            continue
        count += 1
    if not count:
        causes.append(field_required("spec", "must specify a volume type"))
    sc = s(spec.get("storageClassName"))
    if sc:
        causes += [field_invalid("spec.storageClassName", sc, msg) for msg in names.is_dns1123_subdomain(sc)]
    vm = spec.get("volumeMode")
    if vm is not None and vm not in _VOLUME_MODES:
        causes.append(field_not_supported("spec.volumeMode", vm, _VOLUME_MODES))
    return causes


def persistentvolume(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    spec = d(obj.get("spec"))
    if old is None:
        return validate_object_meta(m, False, names.name_is_dns_subdomain) + _pv_spec(spec)
    causes = validate_object_meta_update(m, d(old.get("metadata"))) + _pv_spec(spec)
    old_spec = d(old.get("spec"))
    sources = {k: spec.get(k) for k in _PV_SOURCES if spec.get(k) is not None}
    old_sources = {k: old_spec.get(k) for k in _PV_SOURCES if old_spec.get(k) is not None}
    csi, old_csi = d(sources.get("csi")), d(old_sources.get("csi"))
    if csi and old_csi and "controllerExpandSecretRef" not in old_csi:
        # a controller expand secret may be added later
        sources["csi"] = {k: v for k, v in csi.items() if k != "controllerExpandSecretRef"}
    if sources != old_sources:
        causes.append(field_forbidden("spec.persistentvolumesource",
                                      "spec.persistentvolumesource is immutable after creation"))
    causes += immutable("volumeMode", spec.get("volumeMode"), old_spec.get("volumeMode"))
    return causes
