"""storage.k8s.io/v1 StorageClass validation (pkg/apis/storage/validation)."""
from __future__ import annotations

from typing import Any

from kubegate.api.errors import (
    Cause, field_forbidden, field_invalid, field_not_supported, field_required, field_too_long, field_too_many,
)

from . import names
from .common import d, s
from .meta import immutable, validate_object_meta, validate_object_meta_update

_MAX_PARAMETERS = 512
_MAX_PARAMETERS_SIZE = 256 * 1024
_RECLAIM = ["Delete", "Retain"]
_BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]


def _storageclass_fields(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    prov = s(obj.get("provisioner"))
    if not prov:
        causes.append(field_required("provisioner"))
    else:
        causes += [field_invalid("provisioner", prov.lower(), m) for m in names.is_qualified_name(prov.lower())]
    params = d(obj.get("parameters"))
    if len(params) > _MAX_PARAMETERS:
        causes.append(field_too_many("parameters", len(params), _MAX_PARAMETERS))
    total = 0
    for k, v in params.items():
        if not k:
            causes.append(field_invalid("parameters", k, "field can not be empty."))
        total += len(k.encode()) + len(s(v).encode())
    if total > _MAX_PARAMETERS_SIZE:
        causes.append(field_too_long("parameters", _MAX_PARAMETERS_SIZE))
    rp = obj.get("reclaimPolicy")
    if rp is not None and rp not in _RECLAIM:
        causes.append(field_not_supported("reclaimPolicy", rp, _RECLAIM))
    vbm = obj.get("volumeBindingMode")
    if vbm is None:
        causes.append(field_required("volumeBindingMode"))
    elif vbm not in _BINDING_MODES:
        causes.append(field_not_supported("volumeBindingMode", vbm, _BINDING_MODES))
    return causes


def storageclass(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    if old is None:
        return validate_object_meta(m, False, names.name_is_dns_subdomain) + _storageclass_fields(obj)
    causes = validate_object_meta_update(m, d(old.get("metadata")))
    if d(obj.get("parameters")) != d(old.get("parameters")):
        causes.append(field_forbidden("parameters", "updates to parameters are forbidden."))
    if s(obj.get("provisioner")) != s(old.get("provisioner")):
        causes.append(field_forbidden("provisioner", "updates to provisioner are forbidden."))
    if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
        causes.append(field_forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    causes += immutable("volumeBindingMode", obj.get("volumeBindingMode"), old.get("volumeBindingMode"))
    return causes + _storageclass_fields(obj)
