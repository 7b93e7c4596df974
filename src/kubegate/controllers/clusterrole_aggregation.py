"""The ClusterRole aggregation controller (upstream pkg/controller/clusterroleaggregation).

A ClusterRole with `aggregationRule.clusterRoleSelectors` gets, as its rules, the de-duplicated
union of the rules of every other ClusterRole matching any selector: selectors in order, matching
roles by name within each, rules in their order, first occurrence kept. Rules written by hand into
an aggregated role are overwritten, as upstream. Any ClusterRole change triggers a pass over all
aggregated roles (their dependency graph is unknown and small); a pass that changes a role (e.g.
`edit`, itself aggregated into `admin`) triggers the next one, until nothing changes.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from kubegate.api import errors
from kubegate.api.registry import ResourceRegistry
from kubegate.api.selectors import SelectorError, label_selector_from_object
from kubegate.authz.types import PolicyRule
from kubegate.controllers.workqueue import run_informers
from kubegate.server.informer import Informer

log = logging.getLogger("kubegate.clusterrole-aggregation")


def aggregated_rules(role: dict[str, Any], cluster_roles: Iterable[dict[str, Any]]) -> list[PolicyRule]:
    """The rules `role` must hold; raises SelectorError for an unusable selector."""
    name = role["metadata"]["name"]
    candidates = sorted(cluster_roles, key=lambda r: r["metadata"]["name"])
    rules: list[PolicyRule] = []
    for sel in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or ():
        selector = label_selector_from_object(sel)
        for other in candidates:
            meta = other["metadata"]
            if meta["name"] == name or not selector.matches(meta.get("labels") or {}):
                continue
            for raw in other.get("rules") or ():
                rule = PolicyRule.from_dict(raw)
                if rule not in rules:
                    rules.append(rule)
    return rules


def _with_rules(obj: dict[str, Any], rules: list[PolicyRule]) -> dict[str, Any]:
    if rules:
        obj["rules"] = [r.to_dict() for r in rules]
    else:
        obj.pop("rules", None)
    return obj


class ClusterRoleAggregationController:
    def __init__(self, clusterroles: ResourceRegistry) -> None:
        self.clusterroles = clusterroles
        self._dirty = asyncio.Event()
        self.informer = Informer(clusterroles.cache, self._on_event)

    def _on_event(self, typ: str, obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        self._dirty.set()

    async def run(self) -> None:
        await run_informers([self.informer], self._work)

    async def _work(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
            except errors.StatusError as e:  # e.g. a conflict with a concurrent writer: retry
                log.warning("clusterrole aggregation: %s", e.message)
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def sync(self) -> int:
        """One pass over every aggregated ClusterRole; returns how many were rewritten."""
        entries, _, _ = self.clusterroles.cache.list(self.clusterroles.resource.list_prefix(None))
        roles = [e.object.obj for e in entries]
        written = 0
        for role in roles:
            if not (role.get("aggregationRule") or {}).get("clusterRoleSelectors"):
                continue
            name = role["metadata"]["name"]
            try:
                rules = aggregated_rules(role, roles)
            except SelectorError as e:
                log.warning("clusterrole %s: %s", name, e)
                continue
            if rules == [PolicyRule.from_dict(r) for r in role.get("rules") or ()]:
                continue
            await self.clusterroles.guaranteed_update(None, name, lambda cur, rules=rules: _with_rules(cur, rules))
            written += 1
        return written
