"""ClusterRole aggregation (upstream pkg/controller/clusterroleaggregation): the rules it computes
for admin, edit and view are exactly upstream's, and its ordering and de-duplication rules."""
from __future__ import annotations

from typing import Any

import pytest

from kubegate.api.selectors import SelectorError
from kubegate.authz.bootstrap import default_policy
from kubegate.authz.types import PolicyRule
from kubegate.controllers.clusterrole_aggregation import aggregated_rules


def _cr(name: str, labels: dict[str, str], *rules: dict[str, Any], selectors: list[Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "rules": list(rules)}
    if selectors is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return obj


def _rule(verb: str, resource: str) -> dict[str, Any]:
    return {"verbs": [verb], "apiGroups": [""], "resources": [resource]}


@pytest.mark.parametrize("name", ["admin", "edit", "view"])
def test_default_aggregated_roles_match_upstream(name: str) -> None:
    roles = [o for p, o in default_policy() if p == "clusterroles"]
    role = next(r for r in roles if r["metadata"]["name"] == name)
    # the fixture holds what a real kube-apiserver + controller-manager converged to
    assert aggregated_rules({**role, "rules": []}, roles) == [PolicyRule.from_dict(r) for r in role["rules"]]


def test_order_selectors_then_names_and_duplicates_dropped() -> None:
    agg = _cr("agg", {"a": "1"}, _rule("hand", "written"),
              selectors=[{"matchLabels": {"a": "1"}}, {"matchExpressions": [{"key": "b", "operator": "Exists"}]}])
    roles = [agg,
             _cr("zeta", {"a": "1"}, _rule("get", "z")),
             _cr("alpha", {"a": "1"}, _rule("get", "a"), _rule("get", "z")),
             _cr("beta", {"b": "x"}, _rule("get", "b"), {"verbs": ["get"], "apiGroups": [""], "resources": ["a"],
                                                           "resourceNames": []}),
             _cr("other", {"c": "1"}, _rule("get", "c"))]
    # agg matches its own selector but never aggregates itself; hand-written rules are replaced
    assert aggregated_rules(agg, roles) == [PolicyRule.from_dict(_rule("get", r)) for r in ("a", "z", "b")]


def test_nothing_matching_gives_no_rules_and_a_bad_operator_is_an_error() -> None:
    assert aggregated_rules(_cr("agg", {}, selectors=[{"matchLabels": {"none": "x"}}]), [_cr("x", {"a": "1"})]) == []
    with pytest.raises(SelectorError):
        aggregated_rules(_cr("agg", {}, selectors=[{"matchExpressions": [{"key": "a", "operator": "Near"}]}]), [])
