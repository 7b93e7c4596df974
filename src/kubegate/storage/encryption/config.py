"""EncryptionConfiguration (apiserver.config.k8s.io/v1): strict decoding, upstream's validation and
defaults, and the transformers it builds (upstream pkg/server/options/encryptionconfig/config.go and
pkg/apis/apiserver/validation/validation_encryption.go). Every message is upstream's."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubegate.api.errors import Cause, field_duplicate, field_invalid, field_required

from .aescbc import CBCTransformer
from .aesgcm import GCMTransformer
from .identity import IdentityTransformer
from .kmsv2 import KMSv2Provider
from .secretbox import SecretboxTransformer
from .transformer import GroupResource, PrefixTransformer, PrefixTransformers, TransformerSet, gr_string, group_resource

GROUP_VERSION = "apiserver.config.k8s.io/v1"
_KINDS = {(GROUP_VERSION, "EncryptionConfiguration"), ("v1", "EncryptionConfig")}  # the second: legacy files
_PROVIDERS = ("kms", "aesgcm", "aescbc", "secretbox", "identity")
_AES_SIZES = [16, 24, 32]
_SECRETBOX_SIZES = [32]
_PROVIDER_PREFIX = {"aescbc": b"k8s:enc:aescbc:v1:", "aesgcm": b"k8s:enc:aesgcm:v1:",
                    "secretbox": b"k8s:enc:secretbox:v1:"}
_NO_KEY = {"aescbc": "no matching key was found for the provided AES transformer",
           "aesgcm": "no matching key was found for the provided AES transformer",
           "secretbox": "no matching key was found for the provided Secretbox transformer"}
_NON_REST = {"apiserveripinfo", "serviceipallocations", "servicenodeportallocations"}
KMS_V1_DEPRECATED = ("KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 "
                     "instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature.")

# the fields each object may carry; anything else is a strict decoding error, as upstream
_SCHEMA: dict[str, dict[str, Any]] = {
    "root": {"apiVersion": str, "kind": str, "resources": ["resource"]},
    "resource": {"resources": [str], "providers": ["provider"]},
    "provider": {"aesgcm": "keys", "aescbc": "keys", "secretbox": "keys", "identity": "empty", "kms": "kms"},
    "keys": {"keys": ["key"]},
    "key": {"name": str, "secret": str},
    "empty": {},
    "kms": {"apiVersion": str, "name": str, "cachesize": int, "endpoint": str, "timeout": str},
}


class ConfigError(Exception):
    pass


@dataclass
class Key:
    name: str
    secret: str


@dataclass
class Provider:
    type: str                      # one of _PROVIDERS ("" when none is set)
    keys: list[Key] = field(default_factory=list)
    kms: dict[str, Any] = field(default_factory=dict)
    count: int = 1                 # how many provider types the element set


@dataclass
class ResourceConfig:
    resources: list[str]
    providers: list[Provider]


@dataclass
class EncryptionConfig:
    resources: list[ResourceConfig]
    content_hash: str


def _strict(obj: Any, kind: str, path: str, unknown: list[str]) -> None:
    spec = _SCHEMA[kind]
    if not isinstance(obj, dict):
        return
    for k, v in obj.items():
        sub = f"{path}.{k}" if path else str(k)
        if k not in spec:
            unknown.append(sub)
            continue
        want = spec[k]
        if isinstance(want, list) and isinstance(want[0], str) and want[0] in _SCHEMA and isinstance(v, list):
            for i, item in enumerate(v):
                _strict(item, want[0], f"{sub}[{i}]", unknown)
        elif isinstance(want, str) and want in _SCHEMA:
            _strict(v, want, sub, unknown)


def _decode_error(path: str, msg: str) -> ConfigError:
    return ConfigError(f'error while parsing file: error decoding encryption provider configuration file "{path}": {msg}')


def _duration_seconds(text: str) -> float | None:
    """Go's time.ParseDuration for the units a KMS timeout uses."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    rest, total = text.strip(), 0.0
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest.lstrip("+-")
    if rest == "0":
        return 0.0
    if not rest:
        return None
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        j = i
        while j < len(rest) and not (rest[j].isdigit() or rest[j] == "."):
            j += 1
        if i == 0 or rest[i:j] not in units:
            return None
        total += float(rest[:i]) * units[rest[i:j]]
        rest = rest[j:]
    return sign * total


def _provider(raw: Any) -> Provider:
    raw = raw if isinstance(raw, dict) else {}
    present = [p for p in _PROVIDERS if raw.get(p) is not None]
    if not present:
        return Provider("", count=0)
    kind = present[0]
    body = raw[kind] if isinstance(raw[kind], dict) else {}
    if kind == "kms":
        kms = dict(body)
        kms.setdefault("apiVersion", "v1")
        if kms["apiVersion"] == "v1":
            kms.setdefault("cachesize", 1000)
        kms.setdefault("timeout", "3s")
        return Provider(kind, kms=kms, count=len(present))
    keys = [Key(str(k.get("name") or ""), str(k.get("secret") or "")) for k in (body.get("keys") or [])
            if isinstance(k, dict)]
    return Provider(kind, keys=keys, count=len(present))


def parse(data: bytes, path: str) -> EncryptionConfig:
    """Decode and validate; raises ConfigError with upstream's text."""
    if not data:
        raise ConfigError(f'error while parsing file: error while loading file: encryption provider '
                          f'configuration file "{path}" is empty')
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise _decode_error(path, f"error converting YAML to JSON: {e}") from None
    if not isinstance(raw, dict):
        raise _decode_error(path, "couldn't get version/kind; json parse error: cannot unmarshal into Object")
    api_version, kind = raw.get("apiVersion") or "", raw.get("kind") or ""
    if not kind:
        doc = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
        raise _decode_error(path, f"Object 'Kind' is missing in '{doc}'")
    if (api_version, kind) not in _KINDS:
        raise _decode_error(path, f'no kind "{kind}" is registered for version "{api_version}" in scheme '
                                  f'"pkg/runtime/scheme.go:100"')
    unknown: list[str] = []
    _strict(raw, "root", "", unknown)
    if unknown:
        raise _decode_error(path, "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    resources = [ResourceConfig([str(r) for r in (rc.get("resources") or [])],
                                [_provider(p) for p in (rc.get("providers") or [])])
                 for rc in (raw.get("resources") or []) if isinstance(rc, dict)]
    cfg = EncryptionConfig(resources, hashlib.sha256(data).hexdigest())
    causes = validate(cfg, reload=False)
    if causes:
        raise ConfigError("error while parsing file: " + aggregate(causes))
    return cfg


def aggregate(causes: list[Cause]) -> str:
    """utilerrors.NewAggregate(...).Error(): one error bare, several in brackets."""
    msgs = [f"{c.field}: {c.message}" for c in causes]
    return msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"


# --- validation -----------------------------------------------------------------------------

def validate(cfg: EncryptionConfig, *, reload: bool) -> list[Cause]:
    if not cfg.resources:
        return [field_required("resources", "at least one resources is required")]
    causes: list[Cause] = []
    kms_names: set[str] = set()
    for i, rc in enumerate(cfg.resources):
        r, p = f"resources[{i}].resources", f"resources[{i}].providers"
        if not rc.resources:
            causes.append(field_required(r, f"at least one {r} is required"))
        causes += _overlap(rc.resources, r) + _resource_names(rc.resources, r)
        if not rc.providers:
            causes.append(field_required(p, f"at least one {p} is required"))
        for j, prov in enumerate(rc.providers):
            path = f"{p}[{j}]"
            if prov.count == 0:
                causes.append(field_invalid(path, "{}", "provider does not contain any of the expected providers: "
                                                          "KMS, AESGCM, AESCBC, Secretbox, Identity"))
                continue
            if prov.count > 1:
                causes.append(field_invalid(path, "{}", "more than one provider specified in a single element, "
                                                          "should split into different list elements"))
                continue
            if prov.type == "kms":
                causes += _kms(prov.kms, f"{path}.kms", kms_names, reload)
                kms_names.add(str(prov.kms.get("name") or ""))
            elif prov.type in ("aesgcm", "aescbc"):
                causes += _keys(prov.keys, f"{path}.{prov.type}.keys", _AES_SIZES)
            elif prov.type == "secretbox":
                causes += _keys(prov.keys, f"{path}.secretbox.keys", _SECRETBOX_SIZES)
    return causes


def _overlap(resources: list[str], path: str) -> list[Cause]:
    if len(resources) < 2:
        return []
    grs = [group_resource(r) for r in resources]
    duplicate = overlap = False
    for i, a in enumerate(grs):
        for j, b in enumerate(grs):
            if i == j:
                continue
            if a == b and not duplicate:
                duplicate = True
                continue
            if overlap:
                continue
            if a == ("*", "*") or (a[0] == b[0] and "*" in (a[1], b[1])):
                overlap = True
    causes = []
    if duplicate:
        causes.append(field_invalid(path, resources, "the same resource cannot be specified multiple times"))
    if overlap:
        causes.append(field_invalid(path, resources, "using overlapping resources such as 'secrets' and '*.' in "
                                                     "the same resource list is not allowed as they will be masked"))
    return causes


def _resource_names(resources: list[str], path: str) -> list[Cause]:
    causes = []
    for j, res in enumerate(resources):
        group, resource = group_resource(res)
        msg = ""
        if res.lower() != res:
            msg = "resource name should not contain capital letters"
        elif res == "*":
            msg = "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"
        elif res in _NON_REST:
            msg = "resources which do not have REST API/s cannot be encrypted"
        elif group == "events.k8s.io":
            msg = ("'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' "
                   "instead in the config file")
        elif group == "extensions":
            msg = "'extensions' group has been removed and cannot be used for encryption"
        elif group == "*" and resource != "*":
            msg = "encrypting the same resource across groups is not supported"
        if msg:
            causes.append(field_invalid(f"{path}[{j}]", res, msg))
    return causes


def _keys(keys: list[Key], path: str, sizes: list[int]) -> list[Cause]:
    if not keys:
        return [field_required(path, "at least one keys is required")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        kp = f"{path}[{i}]"
        if not key.name:
            causes.append(field_required(f"{kp}.name", "name is a mandatory field for a key"))
        elif key.name in seen:
            # kubegate addition: upstream accepts it, but the second key of that name could never be read
            causes.append(field_duplicate(f"{kp}.name", key.name))
        seen.add(key.name)
        if not key.secret:
            causes.append(field_required(f"{kp}.secret", "secret is a mandatory field for a key"))
            continue
        secret = _b64(key.secret)
        if secret is None:
            causes.append(field_invalid(f"{kp}.secret", "REDACTED", "secrets must be base64 encoded"))
        elif len(secret) not in sizes:
            causes.append(field_invalid(f"{kp}.secret", "REDACTED", f"secret is not of the expected length, got "
                                        f"{len(secret)}, expected one of [{' '.join(map(str, sizes))}]"))
    return causes


def _kms(kms: dict[str, Any], path: str, names: set[str], reload: bool) -> list[Cause]:
    causes: list[Cause] = []
    name, version = str(kms.get("name") or ""), kms.get("apiVersion")
    if not name:
        causes.append(field_required(f"{path}.name", "name is a mandatory field for a provider"))
    if version != "v1" and ":" in name:
        causes.append(field_invalid(f"{path}.name", name, f"invalid KMS provider name {name}, must not contain ':'"))
    if (reload or version != "v1") and name in names:
        causes.append(field_invalid(f"{path}.name", name, f"duplicate KMS provider name {name}, names must be unique"))
    timeout = _duration_seconds(str(kms.get("timeout")))
    if timeout is None or timeout <= 0:
        causes.append(field_invalid(f"{path}.timeout", str(kms.get("timeout")), "timeout should be a positive value"))
    endpoint = str(kms.get("endpoint") or "")
    if not endpoint:
        causes.append(field_invalid(f"{path}.endpoint", "", "endpoint is a mandatory field for a kms"))
    elif not endpoint.startswith("unix://"):
        scheme = endpoint.partition("://")[0] if "://" in endpoint else ""
        causes.append(field_invalid(f"{path}.endpoint", endpoint,
                                    f'unsupported scheme "{scheme}" for KMS provider, only unix is supported'))
    if version != "v1" and "cachesize" in kms:
        causes.append(field_invalid(f"{path}.cachesize", kms["cachesize"], "cachesize is not supported in v2"))
    if version == "v1" and kms.get("cachesize") == 0:
        causes.append(field_invalid(f"{path}.cachesize", 0, "cachesize should be a positive value, or negative to disable"))
    if version not in ("v1", "v2"):
        causes.append(field_invalid(f"{path}.apiVersion", version, "unsupported apiVersion apiVersion for KMS "
                                                                   "provider, only v1 and v2 are supported"))
    return causes


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- building transformers ------------------------------------------------------------------

def _provider_transformer(prov: Provider, kms: list[KMSv2Provider]) -> PrefixTransformer:
    if prov.type == "identity":
        return PrefixTransformer(b"", IdentityTransformer())
    if prov.type == "kms":
        # one client per provider entry, as upstream: a name listed under two resources gets two probes
        seconds = _duration_seconds(str(prov.kms["timeout"])) or 3.0
        provider = KMSv2Provider(str(prov.kms["name"]), str(prov.kms["endpoint"]), seconds)
        kms.append(provider)
        return PrefixTransformer(provider.prefix, provider)
    make = {"aescbc": CBCTransformer, "aesgcm": GCMTransformer, "secretbox": SecretboxTransformer}[prov.type]
    keys = [PrefixTransformer(k.name.encode() + b":", make(base64.b64decode(k.secret))) for k in prov.keys]
    return PrefixTransformer(_PROVIDER_PREFIX[prov.type], PrefixTransformers(_NO_KEY[prov.type], keys))


def build(cfg: EncryptionConfig) -> TransformerSet:
    """One PrefixTransformers per group resource: entries for the same resource concatenate in file
    order; a resource after an earlier `*.<group>` or `*.*` rule that masks it is an error."""
    kms = [p.kms for rc in cfg.resources for p in rc.providers if p.type == "kms"]
    if any(k.get("apiVersion") == "v1" for k in kms):
        raise ConfigError(f"error while building transformers: {KMS_V1_DEPRECATED}")
    providers: list[KMSv2Provider] = []
    chains: dict[GroupResource, list[PrefixTransformer]] = {}
    for rc in cfg.resources:
        transformers = [_provider_transformer(p, providers) for p in rc.providers]
        for res in rc.resources:
            gr = group_resource(res)
            for mask in ((gr[0], "*"), ("*", "*")):
                if mask in chains:
                    raise ConfigError(f'error while building transformers: resource "{gr_string(gr)}" is masked '
                                      f'by earlier rule "{gr_string(mask)}"')
            chains.setdefault(gr, []).extend(transformers)
    return TransformerSet({gr: PrefixTransformers("no matching prefix found", t) for gr, t in chains.items()},
                          IdentityTransformer(), providers)


def load(path: str | Path) -> tuple[EncryptionConfig, TransformerSet]:
    """Read, decode, validate and build, as upstream LoadEncryptionConfig; raises ConfigError."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f'error while parsing file: error while loading file: error reading encryption '
                          f'provider configuration file "{path}": {e.strerror}') from None
    cfg = parse(data, str(path))
    return cfg, build(cfg)
