"""coordination.k8s.io/v1 Lease validation (pkg/apis/coordination/validation)."""
from __future__ import annotations

from typing import Any

from kubegate.api.errors import Cause, field_forbidden, field_invalid, field_not_supported

from . import names
from .common import d, s
from .meta import validate_object_meta, validate_object_meta_update

_STRATEGIES = ["OldestEmulationVersion"]


def lease(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    m = d(obj.get("metadata"))
    causes = (validate_object_meta(m, True, names.name_is_dns_subdomain) if old is None
              else validate_object_meta_update(m, d(old.get("metadata"))))
    spec = d(obj.get("spec"))
    lds = spec.get("leaseDurationSeconds")
    if isinstance(lds, int) and lds <= 0:
        causes.append(field_invalid("spec.leaseDurationSeconds", lds, "must be greater than 0"))
    lt = spec.get("leaseTransitions")
    if isinstance(lt, int) and lt < 0:
        causes.append(field_invalid("spec.leaseTransitions", lt, "must be greater than or equal to 0"))
    strategy = s(spec.get("strategy"))
    if strategy and strategy not in _STRATEGIES:
        causes.append(field_not_supported("spec.strategy", strategy, _STRATEGIES))
    if s(spec.get("preferredHolder")) and not strategy:
        causes.append(field_forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return causes
