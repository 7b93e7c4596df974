"""The CertificateSigningRequest registry strategies (upstream
pkg/registry/certificates/certificates/strategy.go): who asked is recorded from the request on
create, the spec never changes afterwards, and each write path changes only its part of the status.
Pure functions over wire JSON; `now` is an RFC 3339 timestamp handed in.
"""
from __future__ import annotations

import copy
from typing import Any

from kubegate.api.errors import Cause
from kubegate.api.validation import certificates
from kubegate.authn.user import UserInfo

APPROVAL_TYPES = ("Approved", "Denied")


def prepare_for_create(obj: dict[str, Any], user: UserInfo) -> None:
    """spec.username/uid/groups/extra come from the authenticated user, whatever the client sent."""
    spec = obj.setdefault("spec", {})
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    if user.name:
        spec["username"] = user.name
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    obj["status"] = {}


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    conds = (obj.get("status") or {}).get("conditions")
    return conds if isinstance(conds, list) else []


def _indices(conds: list[Any], ctype: str) -> list[int]:
    return [i for i, c in enumerate(conds) if isinstance(c, dict) and c.get("type") == ctype]


def _preserve_instances(new: dict[str, Any], old: dict[str, Any], ctype: str) -> None:
    """preserveConditionInstances: with as many instances as before, changed ones revert."""
    new_conds, old_conds = _conditions(new), _conditions(old)
    new_idx, old_idx = _indices(new_conds, ctype), _indices(old_conds, ctype)
    if len(new_idx) != len(old_idx):
        return  # validation refuses the added or removed instance
    for n, o in zip(new_idx, old_idx):
        if new_conds[n] != old_conds[o]:
            new_conds[n] = copy.deepcopy(old_conds[o])


def _populate_timestamps(new: dict[str, Any], old: dict[str, Any], now: str) -> None:
    """populateConditionTimestamps: lastUpdateTime defaults to now; lastTransitionTime keeps the
    old condition's of the same type and status, else now."""
    for c in _conditions(new):
        if not isinstance(c, dict):
            continue
        if not c.get("lastUpdateTime"):
            c["lastUpdateTime"] = now
        if not c.get("lastTransitionTime"):
            c["lastTransitionTime"] = next(
                (o["lastTransitionTime"] for o in _conditions(old) if isinstance(o, dict)
                 and o.get("type") == c.get("type") and o.get("status") == c.get("status")
                 and o.get("lastTransitionTime")), now)


def prepare_for_update(new: dict[str, Any], old: dict[str, Any], subresource: str, now: str) -> None:
    """PrepareForUpdate of the main resource, /status and /approval, applied to `new` in place."""
    new["spec"] = copy.deepcopy(old.get("spec") or {})
    if subresource == "":
        new["status"] = copy.deepcopy(old.get("status") or {})
        return
    if subresource == "approval":
        conditions = (new.get("status") or {}).get("conditions")
        new["status"] = copy.deepcopy(old.get("status") or {})
        if conditions is not None:
            new["status"]["conditions"] = conditions
        else:
            new["status"].pop("conditions", None)
    elif subresource == "status":
        for ctype in APPROVAL_TYPES:
            _preserve_instances(new, old, ctype)
    _populate_timestamps(new, old, now)


def update(new: dict[str, Any], old: dict[str, Any], subresource: str, now: str) -> list[Cause]:
    """The registry's CSR update step: prepare `new` for its write path, then the update rules
    of that path (the generic object validation runs afterwards)."""
    prepare_for_update(new, old, subresource, now)
    return certificates.update_rules(new, old, approval=subresource == "approval",
                                     certificate=subresource == "status")
